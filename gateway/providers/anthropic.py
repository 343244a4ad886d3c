"""Anthropic's Messages API behind the OpenAI chat API.

Requests are translated from OpenAI's shape (system messages, multi-turn,
images, tools and tool results, stop, sampling) to `POST /v1/messages`, and
answers back to `chat.completion` / `chat.completion.chunk` objects. Anthropic
counts input tokens without the cached ones; `Usage.prompt_tokens` counts all
of them, with cache reads and writes named apart so they get their own prices.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from billing.pricing import Usage
from gateway.errors import upstream_error
from gateway.providers.base import (
    MAX_PAGES,
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    open_ok,
    parse_arguments,
    post_ok,
)
from gateway.sse import SSEDecoder
from gateway.upstream import Upstream

API_VERSION = "2023-06-01"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_FINISH |= {"tool_use": "tool_calls", "refusal": "content_filter"}
_DATA_URL = re.compile(r"^data:(?P<type>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping))


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = str(image.get("url", "") if isinstance(image, Mapping) else image or "")
            found = _DATA_URL.match(url)
            source = (
                {"type": "base64", "media_type": found["type"], "data": found["data"]}
                if found
                else {"type": "url", "url": url}
            )
            blocks.append({"type": "image", "source": source})
    return blocks


def _message_blocks(message: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    role = message.get("role")
    if role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": str(message.get("tool_call_id", "")),
            "content": _text_of(message.get("content")),
        }
        return "user", [result]
    blocks = _blocks(message.get("content"))
    if role == "assistant":
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            arguments = parse_arguments(function.get("arguments"))
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "input": arguments,
                }
            )
        return "assistant", blocks
    return "user", blocks


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        return {"type": "tool", "name": name} if name else None
    return {"type": "auto"} if choice == "auto" else None


def build_body(call: ChatCall, *, stream: bool) -> dict[str, Any]:
    body = call.body
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        if message.get("role") in ("system", "developer"):
            system.append(_text_of(message.get("content")))
            continue
        role, blocks = _message_blocks(message)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)  # Anthropic wants turns to alternate
        else:
            messages.append({"role": role, "content": blocks})
    out: dict[str, Any] = {
        "model": call.model.upstream_name,
        "messages": messages,
        "max_tokens": call.max_tokens or call.model.max_output_tokens,
    }
    if system:
        out["system"] = "\n\n".join(system)
    if stream:
        out["stream"] = True
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, Mapping)]
    if tools:
        out["tools"] = [
            {
                "name": t.get("name"),
                "description": t.get("description", ""),
                "input_schema": t.get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
        ]
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
    return out


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    read = int(raw.get("cache_read_input_tokens") or 0)
    write = int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0) + read + write,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def _tool_call(block: Mapping[str, Any], index: int) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "index": index,
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise upstream_error(f"The provider '{provider}' answered with invalid JSON.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise upstream_error(f"The provider '{provider}' answered without content.")
    text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    uses = [b for b in data["content"] if b.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if uses:
        message["tool_calls"] = [
            {k: v for k, v in _tool_call(b, i).items() if k != "index"} for i, b in enumerate(uses)
        ]
    usage = parse_usage(data.get("usage"))
    body = {
        "id": data.get("id", ""),
        "object": "chat.completion",
        "created": 0,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH.get(str(data.get("stop_reason")), "stop"),
            }
        ],
    }
    return ChatResult(body=body, usage=usage)


class StreamTranslator:
    """Anthropic stream events in, OpenAI chunks out; no I/O."""

    def __init__(self, model_id: str, stream: ChatStream) -> None:
        self._model_id = model_id
        self._stream = stream
        self._id = ""
        self._input: Usage | None = None
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model_id,
            "choices": [choice],
        }

    def feed(self, event: Mapping[str, Any]) -> list[Chunk]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._id = str(message.get("id", ""))
            self._input = parse_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools[int(event.get("index", 0))] = len(self._tools)
                call = _tool_call({**block, "input": {}}, index)
                call["function"]["arguments"] = ""
                self._stream.text.append(str(block.get("name", "")))
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._stream.text.append(delta.get("text", ""))
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self._tools.get(int(event.get("index", 0)), 0)
                partial = delta.get("partial_json", "")
                self._stream.text.append(partial)
                return [
                    self._chunk(
                        {"tool_calls": [{"index": index, "function": {"arguments": partial}}]}
                    )
                ]
            return []
        if kind == "message_delta":
            out = int((event.get("usage") or {}).get("output_tokens") or 0)
            base = self._input or Usage(0, 0)
            self._stream.usage = Usage(
                base.prompt_tokens, out, base.cache_read_tokens, base.cache_write_tokens
            )
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, _FINISH.get(str(reason), "stop"))]
        if kind == "error":
            error = event.get("error") or {}
            raise upstream_error(f"The provider failed mid-stream: {error.get('message', '')}")
        return []  # ping, content_block_stop, message_stop


def parse_listing(document: Any) -> tuple[list[Listed], str | None]:
    """GET /v1/models: one page, and the id to continue after (None at the end)."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise upstream_error("The models listing has no 'data' array.")
    listed = [
        Listed(item["id"], display_name=str(item.get("display_name") or ""))
        for item in data
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]
    more = document.get("has_more") is True and isinstance(document.get("last_id"), str)
    return listed, document["last_id"] if more else None


class AnthropicProvider:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        listed: list[Listed] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            url = f"{base_url}/v1/models?limit=1000" + (f"&after_id={after}" if after else "")
            page, after = parse_listing(
                await get_json(self._upstream, url, headers, provider, api_key)
            )
            listed += page
            if after is None:
                break
        return listed

    @staticmethod
    def _request(call: ChatCall, *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        headers = {
            "x-api-key": call.api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }
        body = orjson.dumps(build_body(call, stream=stream))
        return f"{call.base_url}/v1/messages", headers, body

    async def chat(self, call: ChatCall) -> ChatResult:
        payload = await post_ok(self._upstream, call, self._request(call, stream=False))
        return parse_response(payload, call.model.model_id, call.provider.id)

    async def chat_stream(self, call: ChatCall) -> ChatStream:
        opened = await open_ok(self._upstream, call, self._request(call, stream=True))
        stream = ChatStream(close=opened.close)
        translator = StreamTranslator(call.model.model_id, stream)

        async def chunks() -> AsyncIterator[Chunk]:
            decoder = SSEDecoder()
            try:
                async for line in opened.lines():
                    for data in decoder.feed(line):
                        event = orjson.loads(data)
                        if isinstance(event, dict):
                            for chunk in translator.feed(event):
                                yield chunk
            finally:
                opened.close()

        stream.chunks = chunks()
        return stream
