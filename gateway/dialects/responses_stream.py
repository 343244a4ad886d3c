"""A streamed internal answer as the Responses API's typed stream events.

The order is OpenAI's: `response.created` and `response.in_progress`; per output
item an `output_item.added`, then for a message `content_part.added`, its
`output_text.delta`s, `output_text.done` and `content_part.done`, or for a
function call its `function_call_arguments.delta`s and `.done`; then the item's
`output_item.done`. Once the ledger row is committed, `response.completed` (or
`response.incomplete`) carries the whole response with its usage and cost.
Every event has a `sequence_number`. A stream that fails ends with an `error`
event instead.
"""

from __future__ import annotations

from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.responses import finished, function_item, message_item, skeleton
from gateway.dialects.sse import typed_event
from gateway.errors import GatewayError


class ResponsesFraming:
    """Fed the internal chunks one at a time; returns the events to send for each."""

    def __init__(
        self, *, request_id: str, model: str, created_at: int, echoed: dict[str, Any]
    ) -> None:
        self._request_id = request_id
        self._response = skeleton(request_id, model, created_at, echoed)
        self._sequence = 0
        self._started = False
        self._open: dict[str, Any] | None = None  # the output item being streamed
        self._text = ""  # the open message's text so far
        self._calls = 0
        self._finish: Any = None

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = self._start()
        choices = chunk.get("choices") or ()
        choice = next((c for c in choices if c.get("index", 0) == 0), None)
        if choice is None:
            return out
        delta = choice.get("delta") or {}
        if delta.get("content"):
            out += self._text_delta(delta["content"])
        for call in delta.get("tool_calls") or ():
            out += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return out

    def end(self, charge: Charge, prices: Prices) -> bytes:
        out = self._start() + self._close()
        response = finished(self._response, self._finish, charge, prices)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})

    def failed(self, error: GatewayError) -> bytes:
        return self._event(
            "error", {"code": error.code, "message": error.message, "param": error.param}
        )

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        event = typed_event(kind, {**data, "sequence_number": self._sequence})
        self._sequence += 1
        return event

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snapshot = {**self._response, "output": []}
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    @property
    def _index(self) -> int:
        """The open item's place in the output."""
        return len(self._response["output"]) - 1

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open["type"] != "message":
            out += self._close()
            item = message_item(f"msg_{self._request_id}_{self._index + 1}", "", "in_progress")
            out += self._added(item)
            out += self._event(
                "response.content_part.added",
                {**self._place(), "part": _text_part("")},
            )
        self._text += text
        return out + self._event(
            "response.output_text.delta", {**self._place(), "delta": text, "logprobs": []}
        )

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        """A call's first delta carries its id and name and opens an item; its
        arguments then arrive as fragments of JSON."""
        out = b""
        function = call.get("function") or {}
        if call.get("id") or self._open is None or self._open["type"] != "function_call":
            out += self._close()
            self._calls += 1
            name = function.get("name")
            item = function_item(
                f"fc_{self._request_id}_{self._calls - 1}",
                str(call.get("id") or f"call_{self._request_id}_{self._calls - 1}"),
                name if isinstance(name, str) else "",
                "",
                "in_progress",
            )
            out += self._added(item)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            assert self._open is not None
            self._open["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": self._open["id"], "output_index": self._index, "delta": arguments},
            )
        return out

    def _added(self, item: dict[str, Any]) -> bytes:
        self._response["output"].append(item)
        self._open = item
        return self._event(
            "response.output_item.added", {"output_index": self._index, "item": dict(item)}
        )

    def _place(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": self._index, "content_index": 0}

    def _close(self) -> bytes:
        item = self._open
        if item is None:
            return b""
        out = b""
        if item["type"] == "message":
            text = self._text
            out += self._event(
                "response.output_text.done", {**self._place(), "text": text, "logprobs": []}
            )
            out += self._event(
                "response.content_part.done", {**self._place(), "part": _text_part(text)}
            )
            item.update(message_item(item["id"], text, "completed"))
            self._text = ""
        else:
            item["status"] = "completed"
            out += self._event(
                "response.function_call_arguments.done",
                {
                    "item_id": item["id"],
                    "output_index": self._index,
                    "name": item["name"],
                    "arguments": item["arguments"],
                },
            )
        self._open = None
        return out + self._event(
            "response.output_item.done", {"output_index": self._index, "item": dict(item)}
        )


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
