"""OpenAI's Responses API, outbound: the response object of a non-streamed
request, and the parts of it the stream (`responses_stream.py`) shares. The
request's translation is in `responses_request.py`.

A response repeats the request's settings (`responses_request.echoed`) around
what the model said: a `message` item with its `output_text` (or `refusal`),
then a `function_call` item per tool call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.cost import cost_fields

# OpenAI's finish reasons that cut an answer short, as the reason a response is incomplete.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(request_id: str) -> str:
    return f"resp_{request_id}"


def message_id(request_id: str) -> str:
    return f"msg_{request_id}"


def call_item_id(request_id: str, number: int) -> str:
    """The id of the response's `number`th function call item (from 0)."""
    return f"fc_{request_id}_{number}"


def incomplete_reason(finish_reason: Any) -> str | None:
    """Why an answer that ended for `finish_reason` is incomplete; None: it is complete."""
    return _INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None


def usage_of(charge: Charge, prices: Prices) -> dict[str, Any]:
    """The Responses API counts cached tokens within `input_tokens`, as the
    gateway does; it has no reasoning figure from a chat answer."""
    usage = charge.usage
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
        **cost_fields(charge, prices),
    }


def response_object(
    *,
    request_id: str,
    model: str,
    created_at: int,
    echo: Mapping[str, Any],
    output: list[dict[str, Any]],
    status: str,
    incomplete: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A response object; `status` "in_progress" while it streams, then
    "completed" or "incomplete" (`incomplete` saying why)."""
    return {
        "id": response_id(request_id),
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None if incomplete is None else {"reason": incomplete},
        "instructions": echo["instructions"],
        "max_output_tokens": echo["max_output_tokens"],
        "model": model,
        "output": output,
        "parallel_tool_calls": echo["parallel_tool_calls"],
        "previous_response_id": echo["previous_response_id"],
        "reasoning": echo["reasoning"],
        "store": echo["store"],
        "temperature": echo["temperature"],
        "text": echo["text"],
        "tool_choice": echo["tool_choice"],
        "tools": echo["tools"],
        "top_p": echo["top_p"],
        "truncation": echo["truncation"],
        "usage": usage,
        "user": echo["user"],
        "metadata": echo["metadata"],
    }


def text_part(kind: str, text: str) -> dict[str, Any]:
    """An `output_text` or a `refusal` content part."""
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(
    request_id: str, content: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": message_id(request_id),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def to_response(
    chat: Mapping[str, Any],
    *,
    request_id: str,
    model: str,
    created_at: int,
    echo: Mapping[str, Any],
    charge: Charge,
    prices: Prices,
) -> dict[str, Any]:
    """An internal chat answer (its first choice) as a response object."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    incomplete = incomplete_reason(choice.get("finish_reason"))
    calls = message.get("tool_calls") or []
    text, refusal = _string(message.get("content")), _string(message.get("refusal"))
    content: list[dict[str, Any]] = []
    if text or not (calls or refusal):  # an empty answer is still a message
        content.append(text_part("output_text", text))
    if refusal:
        content.append(text_part("refusal", refusal))
    output: list[dict[str, Any]] = []
    if content or not calls:
        status = "completed" if incomplete is None else "incomplete"
        output.append(message_item(request_id, content, status))
    for number, call in enumerate(calls):
        function = call.get("function") or {}
        output.append(
            call_item(
                call_item_id(request_id, number),
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
            )
        )
    return response_object(
        request_id=request_id,
        model=model,
        created_at=created_at,
        echo=echo,
        output=output,
        status="completed" if incomplete is None else "incomplete",
        incomplete=incomplete,
        usage=usage_of(charge, prices),
    )
