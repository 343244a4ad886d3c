"""An Anthropic Messages request, already validated
(`gateway.proxy.validation.messages`), as an internal chat request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def to_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """A validated Anthropic Messages request as an OpenAI chat request (a
    token-counting request, which has no `max_tokens`, too)."""
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
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in ("max_tokens", "temperature", "top_p", "stream"):
        if body.get(name) is not None:
            chat[name] = body[name]
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]  # the end user, on the ledger and for budgets
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    if body.get("tools"):
        chat["tools"] = [_tool(tool) for tool in body["tools"]]
        # Without tools there is nothing to choose from: OpenAI refuses a lone tool_choice.
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
    return chat


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


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool["name"],
            "description": tool.get("description") or "",
            "parameters": tool["input_schema"],
        },
    }


def _tool_choice(choice: Mapping[str, Any]) -> Any:
    if choice["type"] == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return {"auto": "auto", "any": "required", "none": "none"}[choice["type"]]
