"""An OpenAI Responses API request, already validated
(`gateway.proxy.validation.responses`), as an internal chat request.

    instructions              a system message, first
    input (a string)          one user message
    message items             messages of the same role; text parts joined
    function_call items       an assistant message's tool_calls (consecutive
                              calls, and text just before them, are one message)
    function_call_output      a `tool` message answering its call_id
    reasoning items           dropped: the gateway never sends them, and a
                              provider could not read another's
    tools, tool_choice        chat's function tools and tool_choice
    text.format               response_format
    max_output_tokens         max_tokens
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PASSED = ("model", "temperature", "top_p", "parallel_tool_calls", "user", "stream")


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    value = body["input"]
    items = [{"role": "user", "content": value}] if isinstance(value, str) else value
    for item in items:
        _add(messages, item)
    chat: dict[str, Any] = {name: body[name] for name in _PASSED if body.get(name) is not None}
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    tools = [chat_tool(tool) for tool in body.get("tools") or ()]
    if tools:
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format((body.get("text") or {}).get("format"))
    if response_format is not None:
        chat["response_format"] = response_format
    return chat


def chat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"]}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _add(messages: list[dict[str, Any]], item: Mapping[str, Any]) -> None:
    kind = item.get("type") if isinstance(item.get("type"), str) else "message"
    if kind == "message":
        messages.append({"role": item["role"], "content": _content(item["content"])})
    elif kind == "function_call":
        call = {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item["output"]
        text = output if isinstance(output, str) else _joined(output)
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})


def _content(content: Any) -> Any:
    """A message's content: its text, or chat parts when it holds an image."""
    if isinstance(content, str):
        return content
    if all(part["type"] != "input_image" for part in content):
        return _joined(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "input_image":
            image: dict[str, Any] = {"url": part["image_url"]}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            parts.append({"type": "text", "text": _text_of(part)})
    return parts


def _joined(parts: list[Mapping[str, Any]]) -> str:
    return "".join(_text_of(part) for part in parts)


def _text_of(part: Mapping[str, Any]) -> str:
    text = part.get("refusal") if part.get("type") == "refusal" else part.get("text")
    return text if isinstance(text, str) else ""


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice["name"]}}


def _response_format(fmt: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": fmt["name"], "schema": fmt["schema"]}
    for name in ("description", "strict"):
        if fmt.get(name) is not None:
            schema[name] = fmt[name]
    return {"type": "json_schema", "json_schema": schema}
