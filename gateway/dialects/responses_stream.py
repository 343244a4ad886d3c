"""A streamed internal answer as the Responses API's typed stream events.

The order is OpenAI's, each event numbered by `sequence_number` from 0:
`response.created` and `response.in_progress`; per output item an
`output_item.added`, then for a message per content part a
`content_part.added`, its `output_text.delta`s (or `refusal.delta`s), their
`.done` and a `content_part.done`, or for a function call its
`function_call_arguments.delta`s and `.done`; the item's `output_item.done`;
and last `response.completed` (or `response.incomplete`) with the whole
response, its usage and its cost. A stream that fails ends with an `error`
event instead, items left open as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.responses import (
    call_item,
    call_item_id,
    incomplete_reason,
    message_id,
    message_item,
    response_object,
    text_part,
    usage_of,
)
from gateway.dialects.sse import typed_event
from gateway.errors import GatewayError

# The chat delta's field that carries each kind of content part.
_DELTA_FIELDS = (("output_text", "content"), ("refusal", "refusal"))


class ResponsesFraming:
    """Fed the internal chunks one at a time; returns the events to send for each."""

    def __init__(
        self, *, request_id: str, model: str, created_at: int, echo: Mapping[str, Any]
    ) -> None:
        self._request_id = request_id
        self._model = model
        self._created_at = created_at
        self._echo = echo
        self._sequence = 0
        self._started = False
        self._output: list[dict[str, Any]] = []  # the items done
        self._item: dict[str, Any] | None = None  # the open item, at index len(_output)
        self._part: str | None = None  # the open content part's kind, in an open message
        self._text = ""  # and its text so far
        self._messages = 0
        self._calls = 0
        self._finish: Any = None

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = self._start()
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for kind, field in _DELTA_FIELDS:
                if isinstance(delta.get(field), str) and delta[field]:
                    out += self._text_delta(kind, delta[field])
            for call in delta.get("tool_calls") or ():
                out += self._tool_call(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def end(self, charge: Charge, prices: Prices) -> bytes:
        incomplete = incomplete_reason(self._finish)
        status = "completed" if incomplete is None else "incomplete"
        out = self._start() + self._close_item(status)
        response = self._response(status, incomplete, usage_of(charge, prices))
        return out + self._event(f"response.{status}", {"response": response})

    def failed(self, error: GatewayError) -> bytes:
        """OpenAI's `error` event, its fields at the top as documented, and nested
        under `error` too, as the API sends them and the openai SDK raises them."""
        fields = {"code": error.code, "message": error.message, "param": error.param}
        return self._event("error", {**fields, **error.body(self._request_id)})

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        number = self._sequence
        self._sequence += 1
        return typed_event(kind, {**data, "sequence_number": number})

    def _response(
        self, status: str, incomplete: str | None = None, usage: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return response_object(
            request_id=self._request_id,
            model=self._model,
            created_at=self._created_at,
            echo=self._echo,
            output=self._output,
            status=status,
            incomplete=incomplete,
            usage=usage,
        )

    def _start(self) -> bytes:
        """`response.created` and `response.in_progress`, before anything else, once."""
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress")
        created = self._event("response.created", {"response": response})
        return created + self._event("response.in_progress", {"response": response})

    def _where(self) -> dict[str, Any]:
        assert self._item is not None
        return {"item_id": self._item["id"], "output_index": len(self._output)}

    def _open(self, item: dict[str, Any]) -> bytes:
        out = self._close_item("completed")
        self._item = item
        return out + self._event(
            "response.output_item.added", {"output_index": len(self._output), "item": item}
        )

    def _text_delta(self, kind: str, text: str) -> bytes:
        out = b""
        if self._item is None or self._item["type"] != "message":
            # The first message has the id a non-streamed answer's would.
            number = self._messages
            self._messages += 1
            item_id = message_id(self._request_id) + (f"_{number}" if number else "")
            out += self._open({**message_item(self._request_id, [], "in_progress"), "id": item_id})
        assert self._item is not None
        if self._part != kind:
            out += self._close_part()
            self._part, self._text = kind, ""
            out += self._event(
                "response.content_part.added",
                {**self._where(), "content_index": self._index(), "part": text_part(kind, "")},
            )
        self._text += text
        at = {**self._where(), "content_index": self._index()}
        if kind == "refusal":
            return out + self._event("response.refusal.delta", {**at, "delta": text})
        return out + self._event(
            "response.output_text.delta", {**at, "delta": text, "logprobs": []}
        )

    def _index(self) -> int:
        """The open content part's index: the parts done come before it."""
        assert self._item is not None
        return len(self._item["content"])

    def _close_part(self) -> bytes:
        if self._part is None or self._item is None:
            return b""
        kind, text = self._part, self._text
        at = {**self._where(), "content_index": self._index()}
        if kind == "refusal":
            out = self._event("response.refusal.done", {**at, "refusal": text})
        else:
            out = self._event("response.output_text.done", {**at, "text": text, "logprobs": []})
        part = text_part(kind, text)
        out += self._event("response.content_part.done", {**at, "part": part})
        self._item["content"].append(part)
        self._part, self._text = None, ""
        return out

    def _tool_call(self, call: Mapping[str, Any]) -> bytes:
        """A tool call's first delta carries its id and name and opens an item;
        its arguments then arrive as fragments of JSON."""
        out = b""
        function = call.get("function") or {}
        if call.get("id"):
            item_id = call_item_id(self._request_id, self._calls)
            self._calls += 1
            name = str(function.get("name") or "")
            out += self._open(call_item(item_id, str(call["id"]), name, "", "in_progress"))
        arguments = function.get("arguments")
        if arguments and self._item is not None and self._item["type"] == "function_call":
            self._item["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta", {**self._where(), "delta": arguments}
            )
        return out

    def _close_item(self, status: str) -> bytes:
        item = self._item
        if item is None:
            return b""
        out = b""
        if item["type"] == "message":
            out += self._close_part()
        else:
            out += self._event(
                "response.function_call_arguments.done",
                {**self._where(), "name": item["name"], "arguments": item["arguments"]},
            )
        item["status"] = status
        out += self._event(
            "response.output_item.done", {"output_index": len(self._output), "item": item}
        )
        self._output.append(item)
        self._item = None
        return out
