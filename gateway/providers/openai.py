"""OpenAI's Chat Completions wire format (OpenAI and every compatible host).

The client's request passes through untouched but for the model name (mapped
to the provider's) and, when streaming, `stream_options.include_usage`, which
the gateway always asks for so that it can bill from the provider's own count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from billing.pricing import Usage
from gateway.errors import upstream_error
from gateway.providers.base import (
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    open_ok,
    post_ok,
)
from gateway.sse import SSEDecoder
from gateway.upstream import Upstream


def build_request(
    call: ChatCall, *, stream: bool, path: str = "chat/completions"
) -> tuple[str, dict[str, str], bytes]:
    body = dict(call.body)
    body["model"] = call.model.upstream_name
    if stream:
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    headers = {
        "Authorization": f"Bearer {call.api_key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    return f"{call.base_url}/{path}", headers, orjson.dumps(body)


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    try:
        return Usage(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            cache_read_tokens=int(cached or 0),
        )
    except (TypeError, ValueError):
        return None


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise upstream_error(f"The provider '{provider}' answered with invalid JSON.") from exc
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise upstream_error(f"The provider '{provider}' answered without choices.")
    body["model"] = model_id
    return ChatResult(body=body, usage=parse_usage(body.get("usage")))


def relayed_text(chunk: Chunk) -> Iterable[str]:
    """The text a chunk carries (content, tool-call arguments, or a legacy
    completion's text), for counting."""
    for choice in chunk.get("choices") or ():
        if choice.get("text"):
            yield choice["text"]
        delta = choice.get("delta") or {}
        if delta.get("content"):
            yield delta["content"]
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            if function.get("name"):
                yield function["name"]
            if function.get("arguments"):
                yield function["arguments"]


def parse_listing(document: Any) -> list[Listed]:
    """GET /v1/models: {"data": [{"id": ...}]} (one page)."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise upstream_error("The models listing has no 'data' array.")
    listed = []
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            name = item["id"]
            mode = "embedding" if "embedding" in name else "chat"
            listed.append(Listed(name, context_window=item.get("context_window"), mode=mode))
    return listed


class OpenAIProvider:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def list_models(self, base_url: str, api_key: str, provider: str) -> list[Listed]:
        headers = {"authorization": f"Bearer {api_key}"}
        document = await get_json(self._upstream, f"{base_url}/models", headers, provider, api_key)
        return parse_listing(document)

    async def chat(self, call: ChatCall) -> ChatResult:
        return await self._complete(call, "chat/completions")

    async def chat_stream(self, call: ChatCall) -> ChatStream:
        return await self._stream(call, "chat/completions")

    async def text_completion(self, call: ChatCall) -> ChatResult:
        """The legacy /completions endpoint (`prompt` in, `choices[].text` out)."""
        return await self._complete(call, "completions")

    async def text_completion_stream(self, call: ChatCall) -> ChatStream:
        return await self._stream(call, "completions")

    async def _complete(self, call: ChatCall, path: str) -> ChatResult:
        request = build_request(call, stream=False, path=path)
        payload = await post_ok(self._upstream, call, request)
        return parse_response(payload, call.model.model_id, call.provider.id)

    async def embed(self, call: ChatCall) -> ChatResult:
        body = {**call.body, "model": call.model.upstream_name}
        headers = {"Authorization": f"Bearer {call.api_key}", "Content-Type": "application/json"}
        request = (f"{call.base_url}/embeddings", headers, orjson.dumps(body))
        payload = await post_ok(self._upstream, call, request)
        try:
            result = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise upstream_error(
                f"The provider '{call.provider.id}' answered with invalid JSON."
            ) from exc
        if not isinstance(result, dict) or not isinstance(result.get("data"), list):
            raise upstream_error(f"The provider '{call.provider.id}' answered without data.")
        result["model"] = call.model.model_id
        return ChatResult(body=result, usage=parse_usage(result.get("usage")))

    async def _stream(self, call: ChatCall, path: str) -> ChatStream:
        opened = await open_ok(self._upstream, call, build_request(call, stream=True, path=path))
        stream = ChatStream(close=opened.close)
        model_id = call.model.model_id

        async def chunks() -> AsyncIterator[Chunk]:
            decoder = SSEDecoder()
            try:
                async for line in opened.lines():
                    for data in decoder.feed(line):
                        if data == "[DONE]":
                            return
                        chunk = orjson.loads(data)
                        if not isinstance(chunk, dict):
                            continue
                        usage = parse_usage(chunk.get("usage"))
                        if usage is not None:
                            stream.usage = usage
                        if not chunk.get("choices"):
                            continue  # the usage-only chunk: the gateway writes its own
                        chunk["model"] = model_id
                        stream.text.extend(relayed_text(chunk))
                        yield chunk
            finally:
                opened.close()

        stream.chunks = chunks()
        return stream
