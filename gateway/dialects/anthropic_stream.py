"""A streamed internal answer as Anthropic's typed stream events.

The order is Anthropic's: `message_start`; per content block a
`content_block_start`, its deltas (`text_delta`, or `input_json_delta` for a
tool call's arguments) and a `content_block_stop`; then `message_delta` (the
stop reason, the output tokens and the cost) and `message_stop`. A stream that
fails ends with an `error` event instead, blocks left open as they were.
"""

from __future__ import annotations

from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.anthropic import message_id, stop_reason
from gateway.dialects.cost import cost_fields
from gateway.dialects.sse import typed_event
from gateway.errors import GatewayError


class AnthropicFraming:
    """Fed the internal chunks one at a time; returns the events to send for each."""

    def __init__(self, *, request_id: str, model: str, input_tokens: int) -> None:
        self._request_id = request_id
        self._id = message_id(request_id)
        self._model = model
        self._input_tokens = input_tokens  # our estimate: the provider reports at the end
        self._started = False
        self._block = -1  # index of the open content block
        self._open: str | None = None  # its kind: "text" | "tool_use"
        self._stop = "end_turn"

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = self._start()
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self._open != "text":
                    out += self._switch("text", {"type": "text", "text": ""})
                out += self._delta({"type": "text_delta", "text": delta["content"]})
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self._stop = stop_reason(choice["finish_reason"])
        return out

    def end(self, charge: Charge, prices: Prices) -> bytes:
        out = self._start() + self._close()
        out += typed_event(
            "message_delta",
            {
                "delta": {"stop_reason": self._stop, "stop_sequence": None},
                "usage": {
                    "output_tokens": charge.usage.completion_tokens,
                    **cost_fields(charge, prices),
                },
            },
        )
        return out + typed_event("message_stop", {})

    def failed(self, error: GatewayError) -> bytes:
        """The same body as an error answered before the stream began."""
        body = error.anthropic_body(self._request_id)
        return typed_event("error", {"error": body["error"], "request_id": body["request_id"]})

    def _start(self) -> bytes:
        """`message_start`, before anything else and only once."""
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return typed_event("message_start", {"message": message})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        """A tool call's first delta carries its id and opens a block; its
        arguments then arrive as fragments of JSON."""
        out = b""
        function = call.get("function") or {}
        if call.get("id"):
            name = function.get("name")
            block = {"type": "tool_use", "id": call["id"], "name": name, "input": {}}
            out += self._switch("tool_use", block)
        if function.get("arguments"):
            out += self._delta({"type": "input_json_delta", "partial_json": function["arguments"]})
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return typed_event("content_block_delta", {"index": self._block, "delta": delta})

    def _switch(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._open = kind
        return out + typed_event(
            "content_block_start", {"index": self._block, "content_block": block}
        )

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return typed_event("content_block_stop", {"index": self._block})
