"""The OpenAI Responses API, outbound: a `response` object from an internal chat
answer (its first choice), and the pieces the stream (`responses_stream.py`)
shares. The request's translation is in `responses_request.py`.

A response echoes the request's settings (`settings`), as OpenAI's does. It is
never stored (`store: false`): the gateway keeps no responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.pricing import Prices
from billing.settlement import Charge
from gateway.dialects.cost import cost_fields

# Why an answer is incomplete, by chat finish reason; any other reason completed it.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(request_id: str) -> str:
    return f"resp_{request_id}"


def settings(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a response repeats of its (validated) request."""
    tools = [
        {
            "type": "function",
            "name": tool["name"],
            "description": tool.get("description"),
            "parameters": tool.get("parameters"),
            "strict": tool.get("strict"),
        }
        for tool in body.get("tools") or ()
    ]
    text = body.get("text") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": dict(body.get("metadata") or {}),
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": tools,
        "text": {"format": text.get("format") or {"type": "text"}},
        "user": body.get("user"),
        "store": False,
        "background": False,
        "previous_response_id": None,
    }


def skeleton(
    request_id: str, model: str, created_at: int, echoed: Mapping[str, Any]
) -> dict[str, Any]:
    """A response still in progress: no output, no usage yet."""
    return {
        "id": response_id(request_id),
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        **echoed,
        "usage": None,
    }


def finished(
    response: dict[str, Any], finish_reason: Any, charge: Charge, prices: Prices
) -> dict[str, Any]:
    """`response` ended: its status, why it is incomplete if it is, its usage."""
    reason = _INCOMPLETE.get(str(finish_reason))
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage_of(charge, prices)
    return response


def usage_of(charge: Charge, prices: Prices) -> dict[str, Any]:
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


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content if status == "completed" else [],
    }


def function_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def to_response(
    chat: Mapping[str, Any],
    *,
    request_id: str,
    model: str,
    created_at: int,
    echoed: Mapping[str, Any],
    charge: Charge,
    prices: Prices,
) -> dict[str, Any]:
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    response = skeleton(request_id, model, created_at, echoed)
    output = response["output"]
    if isinstance(message.get("content"), str) and message["content"]:
        output.append(message_item(f"msg_{request_id}", message["content"], "completed"))
    for index, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        output.append(
            function_item(
                f"fc_{request_id}_{index}",
                str(call.get("id") or f"call_{request_id}_{index}"),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    return finished(response, choice.get("finish_reason"), charge, prices)
