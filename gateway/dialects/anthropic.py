"""Anthropic's Messages API, outbound: the answer to a non-streamed request, and
the mappings the answer and the stream (`anthropic_stream.py`) share. The
request's translation is in `anthropic_request.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.cost import cost_fields
from gateway.providers.base import parse_arguments

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: Any) -> str:
    """OpenAI's finish reason as Anthropic's stop reason; anything else ended the turn."""
    return _STOP_REASONS.get(str(finish_reason), "end_turn")


def message_id(request_id: str) -> str:
    return f"msg_{request_id}"


def usage_of(charge: Charge, prices: Prices) -> dict[str, Any]:
    """Anthropic counts cached prompt tokens apart from `input_tokens`."""
    usage = charge.usage
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": usage.prompt_tokens - cached,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        **cost_fields(charge, prices),
    }


def to_message(
    chat: Mapping[str, Any], *, request_id: str, model: str, charge: Charge, prices: Prices
) -> dict[str, Any]:
    """An internal chat answer (its first choice) as an Anthropic message."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage_of(charge, prices),
    }
