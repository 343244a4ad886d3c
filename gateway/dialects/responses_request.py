"""An OpenAI Responses request, already validated
(`gateway.proxy.validation.responses`), as an internal chat request; and the
request fields a response repeats back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Copied to the chat request as they are: the chat API names them the same.
_SAME = (
    "temperature",
    "top_p",
    "stream",
    "user",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
)


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Responses request as an OpenAI chat request."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body["input"]
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items:
        kind = item.get("type") or "message"
        if kind == "message":
            messages.append(_message(item))
        elif kind == "function_call":
            _add_call(messages, item)
        elif kind == "function_call_output":
            output = item["output"]
            content = output if isinstance(output, str) else _joined(output)
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        # A reasoning item is dropped: a chat request has no place for it.
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    for name in _SAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools"):
        chat["tools"] = [_tool(tool) for tool in body["tools"]]
        # Without tools there is nothing to choose or call in parallel: OpenAI
        # refuses either setting alone.
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    text = body.get("text") or {}
    if text.get("format") and text["format"]["type"] != "text":
        chat["response_format"] = _response_format(text["format"])
    if text.get("verbosity") is not None:
        chat["verbosity"] = text["verbosity"]
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        chat["reasoning_effort"] = effort
    return chat


def echoed(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request's settings as a response object repeats them, defaults filled
    in; `store` is always false: the gateway keeps no response."""
    text = body.get("text") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
        "previous_response_id": None,
        "reasoning": body.get("reasoning"),
        "store": False,
        "temperature": body.get("temperature"),
        "text": {**text, "format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _joined(parts: list[Any]) -> str:
    """Validated text parts (input_text, output_text, refusal) as one string."""
    return "".join(p["refusal"] if p["type"] == "refusal" else p["text"] for p in parts)


def _message(item: Mapping[str, Any]) -> dict[str, Any]:
    role, content = item["role"], item["content"]
    if isinstance(content, str) or role != "user":
        return {"role": role, "content": content if isinstance(content, str) else _joined(content)}
    return {"role": role, "content": [_user_part(part) for part in content]}


def _user_part(part: Mapping[str, Any]) -> dict[str, Any]:
    if part["type"] == "input_text":
        return {"type": "text", "text": part["text"]}
    image: dict[str, Any] = {"url": part["image_url"]}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _add_call(messages: list[dict[str, Any]], item: Mapping[str, Any]) -> None:
    """A function call joins the assistant turn just before it, or opens one: a
    chat assistant message holds all the calls its tool results answer."""
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice["name"]}}


def _response_format(form: Mapping[str, Any]) -> dict[str, Any]:
    if form["type"] == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": form["name"], "schema": form["schema"]}
    for name in ("description", "strict"):
        if form.get(name) is not None:
            schema[name] = form[name]
    return {"type": "json_schema", "json_schema": schema}
