"""OpenAI's Chat Completions wire format (OpenAI and every compatible host).

The client's request passes through untouched but for the model name (mapped
to the provider's) and, when streaming, `stream_options.include_usage`, which
the gateway always asks for so that it can bill from the provider's own count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from billing.pricing import Usage
from billing.settlement import Anomaly, Implausible, Reported, plausible, token_count
from gateway.errors import upstream_error
from gateway.providers.base import (
    ChatCall,
    ChatResult,
    ChatStream,
    Chunk,
    Listed,
    get_json,
    json_answer,
    malformed,
    open_ok,
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
)


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


def parse_usage(raw: Any, *, output: bool = True) -> Reported:
    """OpenAI's usage object: None when absent, an Anomaly when its figures are
    not plausible token counts. An embeddings answer has no output to report
    (`output=False`): its usage carries no `completion_tokens`."""
    if raw is None:
        return None
    try:
        usage = obj(raw, "usage")
        details = opt_obj(usage.get("prompt_tokens_details"), "usage.prompt_tokens_details")
        return plausible(
            Usage(
                prompt_tokens=token_count(usage, "prompt_tokens"),
                completion_tokens=token_count(usage, "completion_tokens", required=output),
                cache_read_tokens=token_count(details, "cached_tokens", required=False),
            )
        )
    except (Malformed, Implausible):
        return Anomaly.of(raw)


def _checked_message(message: Mapping[str, Any], where: str) -> None:
    """The parts of an answer's message (or a chunk's delta) that we read or relay."""
    opt_str(message.get("role"), f"{where}.role")
    opt_str(message.get("content"), f"{where}.content")
    for n, call in enumerate(items(message.get("tool_calls"), f"{where}.tool_calls")):
        index(call.get("index"), f"{where}.tool_calls[{n}].index")
        opt_str(call.get("id"), f"{where}.tool_calls[{n}].id")
        function = opt_obj(call.get("function"), f"{where}.tool_calls[{n}].function")
        opt_str(function.get("name"), f"{where}.tool_calls[{n}].function.name")
        opt_str(function.get("arguments"), f"{where}.tool_calls[{n}].function.arguments")


def checked_choices(data: Mapping[str, Any], part: str) -> list[Mapping[str, Any]]:
    """An answer's or a chunk's choices, each checked where we read it; `part` is
    "message" (an answer) or "delta" (a chunk)."""
    choices = items(data.get("choices"), "choices")
    for n, choice in enumerate(choices):
        index(choice.get("index"), f"choices[{n}].index")
        opt_str(choice.get("finish_reason"), f"choices[{n}].finish_reason")
        opt_str(choice.get("text"), f"choices[{n}].text")  # legacy completions
        _checked_message(opt_obj(choice.get(part), f"choices[{n}].{part}"), f"choices[{n}].{part}")
    return choices


def parse_response(payload: bytes, model_id: str, provider: str) -> ChatResult:
    """A chat or legacy completion answer, checked; 502 when it cannot be read."""
    body = json_answer(payload, provider)
    try:
        if not isinstance(body.get("choices"), list):
            raise Malformed("'choices' is missing")
        checked_choices(body, "message")
    except Malformed as exc:
        raise malformed(provider, exc) from exc
    body["model"] = model_id
    return ChatResult(body=body, usage=parse_usage(body.get("usage")))


def relayed_text(chunk: Chunk) -> Iterable[str]:
    """The text a (checked) chunk carries (content, tool-call names and
    arguments, or a legacy completion's text), for counting."""
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


class OpenAIStream:
    """OpenAI's stream events in, checked chunks out (the usage-only chunk is
    kept as the stream's usage, not relayed); pure."""

    def __init__(self, model_id: str, stream: ChatStream) -> None:
        self._model_id = model_id
        self._stream = stream
        self._finished = False  # a choice said why it finished
        self.done = False

    def feed(self, data: str) -> list[Chunk]:
        if data == "[DONE]":
            self.done = True
            return []
        chunk = obj(orjson.loads(data), "a chunk")
        failure = error_message(chunk)
        if failure is not None:
            raise upstream_error(f"The provider failed mid-stream: {failure}")
        choices = checked_choices(chunk, "delta")
        if chunk.get("usage") is not None:
            self._stream.usage = parse_usage(chunk["usage"])
            self._stream.usage_complete = True
        if not choices:
            return []  # the usage-only chunk: the gateway writes its own
        self._finished = self._finished or any(c.get("finish_reason") for c in choices)
        out = dict(chunk)
        out["model"] = self._model_id
        self._stream.text.extend(relayed_text(out))
        return [out]

    def end(self) -> list[Chunk]:
        """No [DONE]: the stream is whole only if a choice said it finished."""
        if not self._finished:
            raise upstream_error("The provider's stream ended before its answer was finished.")
        return []


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
    def __init__(self, upstream: Transport) -> None:
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
        result = json_answer(payload, call.provider.id)
        if not isinstance(result.get("data"), list):
            raise upstream_error(f"The provider '{call.provider.id}' answered without data.")
        result["model"] = call.model.model_id
        return ChatResult(body=result, usage=parse_usage(result.get("usage"), output=False))

    async def _stream(self, call: ChatCall, path: str) -> ChatStream:
        opened = await open_ok(self._upstream, call, build_request(call, stream=True, path=path))
        stream = ChatStream(close=opened.close)
        decoder = OpenAIStream(call.model.model_id, stream)
        stream.chunks = relay(opened, decoder, call.provider.id, call.api_key)
        return stream
