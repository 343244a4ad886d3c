"""POST /v1/messages: Anthropic's Messages format inbound, so the anthropic SDK
works against the gateway too. The request is translated to an OpenAI chat
request, metered and routed like any other (to any provider), and the answer
translated back: a message, or Anthropic's stream events.

The key is checked first (no key, 401, whatever the body), then the whole
Anthropic shape (`gateway.proxy.validation.messages`), and only then is anything
translated. Errors are OpenAI-shaped, rendered by `ApiEndpoint` like every
metered route's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.datastructures import Headers

from billing.pricing import Usage, usd
from gateway.api.endpoint import Reply, metered
from gateway.errors import GatewayError
from gateway.providers.base import parse_arguments
from gateway.proxy.admission import admit
from gateway.proxy.admitted import Admitted
from gateway.proxy.core import Core
from gateway.proxy.receipts import cost_headers
from gateway.proxy.serving import complete, open_stream
from gateway.proxy.streaming import MeteredStream
from gateway.proxy.validation import parse_body, validate_messages

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_STOP |= {"content_filter": "refusal"}


def _text(content: Any) -> str:
    """A validated string or array of text blocks, as one string."""
    if isinstance(content, str):
        return content
    return "".join(b["text"] for b in content or () if b["type"] == "text")


def _image_url(source: Mapping[str, Any]) -> str:
    if source["type"] == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    return str(source["url"])


def _user_turn(blocks: list[Any]) -> list[dict[str, Any]]:
    """An Anthropic user turn as OpenAI messages: its tool results first (each
    answers the assistant turn just before), then the user's own content."""
    parts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif block["type"] == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block["source"])}})
        else:  # tool_result
            results.append(
                {
                    "role": "tool",
                    "tool_call_id": block["tool_use_id"],
                    "content": _text(block.get("content")),
                }
            )
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _assistant_turn(blocks: list[Any]) -> dict[str, Any]:
    """An Anthropic assistant turn as one OpenAI message; thinking blocks are dropped."""
    calls = [
        {
            "id": b["id"],
            "type": "function",
            "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()},
        }
        for b in blocks
        if b["type"] == "tool_use"
    ]
    text = _text(blocks)
    turn: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        turn["tool_calls"] = calls
    return turn


def _tool_choice(choice: Mapping[str, Any]) -> Any:
    if choice["type"] == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice["type"]]


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Anthropic Messages request as an OpenAI chat request."""
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"])})
    for message in body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if message["role"] == "assistant":
            messages.append(_assistant_turn(blocks))
        else:
            messages.extend(_user_turn(blocks))
    chat: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body["max_tokens"],
    }
    for name in ("temperature", "top_p", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    if body.get("tools"):
        chat["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description") or "",
                    "parameters": t["input_schema"],
                },
            }
            for t in body["tools"]
        ]
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
    return chat


def _usage(usage: Usage, cost: int | None) -> dict[str, Any]:
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens - cached,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }
    if cost is not None:
        out["cost"] = usd(cost)
    return out


def to_message(admitted: Admitted, chat: Mapping[str, Any], usage: Usage, cost: int) -> Any:
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = parse_arguments(function.get("arguments"))
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": arguments,
            }
        )
    return {
        "id": f"msg_{admitted.request_id}",
        "type": "message",
        "role": "assistant",
        "model": admitted.model.model_id,
        "content": content,
        "stop_reason": _STOP.get(str(choice.get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": _usage(usage, cost),
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class AnthropicFraming:
    """OpenAI chunks in, Anthropic stream events out."""

    def __init__(self, admitted: Admitted) -> None:
        self._admitted = admitted
        self._started = False
        self._block = -1  # index of the open content block
        self._open: str | None = None  # its kind: "text" | "tool_use"
        self._stop = "end_turn"

    def _start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": f"msg_{self._admitted.request_id}",
            "type": "message",
            "role": "assistant",
            "model": self._admitted.model.model_id,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._admitted.prompt_estimate, "output_tokens": 0},
        }
        return _event("message_start", {"message": message})

    def _switch(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._open = kind
        return out + _event("content_block_start", {"index": self._block, "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._block})

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b"" if self._started else self._start()
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self._open != "text":
                    out += self._switch("text", {"type": "text", "text": ""})
                out += _event(
                    "content_block_delta",
                    {
                        "index": self._block,
                        "delta": {"type": "text_delta", "text": delta["content"]},
                    },
                )
            for call in delta.get("tool_calls") or ():
                function = call.get("function") or {}
                if call.get("id"):
                    out += self._switch(
                        "tool_use",
                        {
                            "type": "tool_use",
                            "id": call["id"],
                            "name": function.get("name"),
                            "input": {},
                        },
                    )
                if function.get("arguments"):
                    out += _event(
                        "content_block_delta",
                        {
                            "index": self._block,
                            "delta": {
                                "type": "input_json_delta",
                                "partial_json": function["arguments"],
                            },
                        },
                    )
            if choice.get("finish_reason"):
                self._stop = _STOP.get(str(choice["finish_reason"]), "end_turn")
        return out

    def end(self, usage: Usage, cost: int) -> bytes:
        out = (b"" if self._started else self._start()) + self._close()
        out += _event(
            "message_delta",
            {
                "delta": {"stop_reason": self._stop, "stop_sequence": None},
                "usage": {"output_tokens": usage.completion_tokens, "cost": usd(cost)},
            },
        )
        return out + _event("message_stop", {})

    def failed(self, error: GatewayError) -> bytes:
        return _event("error", {"error": {"type": "api_error", "message": error.message}})


async def messages(core: Core, headers: Headers, raw: bytes) -> Reply:
    body = parse_body(raw)
    validate_messages(body)
    chat = to_chat(body)
    admitted = await admit(core, headers, chat)
    if chat.get("stream") is True:
        stream = await open_stream(core, admitted)
        return MeteredStream(
            core,
            admitted,
            stream,
            framing=AnthropicFraming(admitted),
            headers=cost_headers(admitted),
        )
    answered = await complete(core, admitted)
    settled = answered.settled
    reply = to_message(admitted, answered.result.body, settled.usage, settled.cost)
    return orjson.dumps(reply), cost_headers(admitted, settled)


routes = [metered("/v1/messages", messages)]
