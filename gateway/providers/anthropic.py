"""Anthropic's Messages API behind the OpenAI chat API.

Requests are translated from OpenAI's shape (system messages, multi-turn,
images, tools and tool results, stop, sampling) to `POST /v1/messages`, and
answers back to `chat.completion` / `chat.completion.chunk` objects. Anthropic
counts input tokens without the cached ones; `Usage.prompt_tokens` counts all
of them, with cache reads and writes named apart so they get their own prices.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

from billing.pricing import Usage
from billing.settlement import Anomaly, Implausible, Reported, token_count
from gateway.errors import upstream_error
from gateway.providers.base import (
    MAX_PAGES,
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    json_answer,
    malformed,
    open_ok,
    parse_arguments,
    post_ok,
    relay,
)
from gateway.providers.transport import Transport
from gateway.providers.wire import (
    Malformed,
    error_message,
    index,
    items,
    obj,
    opt_obj,
    opt_str,
    text,
)

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


def parse_usage(raw: Any) -> Reported:
    """Anthropic's usage object (its input excludes the cache reads and writes,
    which are added here): None when absent, an Anomaly when not plausible."""
    if raw is None:
        return None
    try:
        usage = obj(raw, "usage")
        read = token_count(usage, "cache_read_input_tokens", required=False)
        write = token_count(usage, "cache_creation_input_tokens", required=False)
        return Usage(
            prompt_tokens=token_count(usage, "input_tokens") + read + write,
            completion_tokens=token_count(usage, "output_tokens"),
            cache_read_tokens=read,
            cache_write_tokens=write,
        )
    except (Malformed, Implausible):
        return Anomaly.of(raw)


def final_usage(started: Reported, raw: Any) -> Reported:
    """The usage at `message_delta`: its output count, with the input figures of
    `message_start` (or its own, where it repeats them)."""
    try:
        usage = obj(raw, "message_delta.usage")
        if usage.get("input_tokens") is not None:
            return parse_usage(raw)
        output = token_count(usage, "output_tokens")
    except (Malformed, Implausible):
        return Anomaly.of(raw)
    if not isinstance(started, Usage):
        return started if isinstance(started, Anomaly) else Anomaly.of(raw)
    return replace(started, completion_tokens=output)


def _tool_call(block: Mapping[str, Any], index: int) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "index": index,
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }


def _checked_block(block: Mapping[str, Any], where: str) -> str:
    """A content block's type, with the fields we read checked."""
    kind = text(block.get("type"), f"{where}.type")
    if kind == "text":
        text(block.get("text"), f"{where}.text")
    elif kind == "tool_use":
        text(block.get("id"), f"{where}.id")
        text(block.get("name"), f"{where}.name")
        opt_obj(block.get("input"), f"{where}.input")
    return kind


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    data = json_answer(payload, provider)
    try:
        if not isinstance(data.get("content"), list):
            raise Malformed("'content' is missing")
        blocks = items(data["content"], "content")
        kinds = [_checked_block(block, f"content[{n}]") for n, block in enumerate(blocks)]
        answer_id = text(data.get("id"), "id")
        stop_reason = opt_str(data.get("stop_reason"), "stop_reason")
    except Malformed as exc:
        raise malformed(provider, exc) from exc
    typed = list(zip(blocks, kinds, strict=True))
    said = "".join(block.get("text") or "" for block, kind in typed if kind == "text")
    uses = [block for block, kind in typed if kind == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": said or None}
    if uses:
        message["tool_calls"] = [
            {k: v for k, v in _tool_call(b, i).items() if k != "index"} for i, b in enumerate(uses)
        ]
    body = {
        "id": answer_id,
        "object": "chat.completion",
        "created": 0,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _FINISH.get(str(stop_reason), "stop"),
            }
        ],
    }
    return ChatResult(body=body, usage=parse_usage(data.get("usage")))


class AnthropicStream:
    """Anthropic stream events in, OpenAI chunks out; no I/O. The input figures
    of `message_start` are the stream's usage from the start, so a stream that
    ends early is charged with them; `message_delta` completes them."""

    def __init__(self, model_id: str, stream: ChatStream) -> None:
        self._model_id = model_id
        self._stream = stream
        self._id = ""
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self._ended = False  # message_delta said why the answer ended
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> Chunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model_id,
            "choices": [choice],
        }

    def feed(self, data: str) -> list[Chunk]:
        event = obj(orjson.loads(data), "an event")
        kind = event.get("type")
        if kind == "message_start":
            message = obj(event.get("message"), "message_start.message")
            self._id = text(message.get("id"), "message_start.message.id")
            self._stream.usage = parse_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = obj(event.get("content_block"), "content_block_start.content_block")
            at = index(event.get("index"), "content_block_start.index")
            if _checked_block(block, "content_block_start.content_block") == "tool_use":
                position = self._tools[at] = len(self._tools)
                call = _tool_call({**block, "input": {}}, position)
                call["function"]["arguments"] = ""
                self._stream.text.append(str(block.get("name", "")))
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = obj(event.get("delta"), "content_block_delta.delta")
            at = index(event.get("index"), "content_block_delta.index")
            if delta.get("type") == "text_delta":
                said = text(delta.get("text"), "text_delta.text")
                self._stream.text.append(said)
                return [self._chunk({"content": said})]
            if delta.get("type") == "input_json_delta":
                partial = text(delta.get("partial_json"), "input_json_delta.partial_json")
                self._stream.text.append(partial)
                arguments = {"index": self._tools.get(at, 0), "function": {"arguments": partial}}
                return [self._chunk({"tool_calls": [arguments]})]
            return []
        if kind == "message_delta":
            delta = opt_obj(event.get("delta"), "message_delta.delta")
            reason = opt_str(delta.get("stop_reason"), "message_delta.delta.stop_reason")
            self._stream.usage = final_usage(self._stream.usage, event.get("usage"))
            self._stream.usage_complete = True
            self._ended = True
            return [self._chunk({}, _FINISH.get(str(reason), "stop"))]
        if kind == "message_stop":
            self.done = True
            return []
        if kind == "error":
            failure = error_message(event) or "no details"
            raise upstream_error(f"The provider failed mid-stream: {failure}")
        return []  # ping, content_block_stop, and event types added later

    def end(self) -> list[Chunk]:
        if not self._ended:
            raise upstream_error("The provider's stream ended before its answer was finished.")
        return []


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
    def __init__(self, upstream: Transport) -> None:
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
        decoder = AnthropicStream(call.model.model_id, stream)
        stream.chunks = relay(opened, decoder, call.provider.id, call.api_key)
        return stream
