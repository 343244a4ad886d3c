"""An Anthropic Messages request (POST /v1/messages): its shape checked in
full before it is translated to the gateway's internal form, OpenAI chat.

Whatever the translation cannot carry is refused by name rather than dropped,
except thinking blocks in assistant turns: they are the model's own earlier
reasoning, which an OpenAI chat request has no place for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.validation.body import model_name
from gateway.validation.chat import MAX_STOP
from gateway.validation.fields import (
    array,
    boolean,
    field,
    integer,
    invalid,
    item,
    mapping,
    number,
    required_array,
    required_choice,
    required_mapping,
    required_string,
    string,
    strings,
)

ROLES = ("user", "assistant")
TOOL_CHOICES = ("auto", "any", "none", "tool")
IMAGE_SOURCES = ("base64", "url")
BLOCKS = {
    "user": ("text", "image", "tool_result"),
    "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
}


def validate_messages(body: Mapping[str, Any]) -> None:
    """A 400 naming the first field of an Anthropic request that is not valid."""
    model_name(body)
    if body.get("max_tokens") is None:
        raise invalid("max_tokens", "Missing required parameter: 'max_tokens'.", "missing")
    integer(body.get("max_tokens"), "max_tokens", 1)
    messages = required_array(body.get("messages"), "messages", nonempty=True)
    for index, message in enumerate(messages):
        _message(message, item("messages", index))
    _system(body.get("system"))
    _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"))
    strings(body.get("stop_sequences"), "stop_sequences", most=MAX_STOP)
    number(body.get("temperature"), "temperature", 0, 1)
    number(body.get("top_p"), "top_p", 0, 1)
    integer(body.get("top_k"), "top_k", 0)
    mapping(body.get("metadata"), "metadata")
    boolean(body.get("stream"), "stream")


def _message(message: Any, param: str) -> None:
    message = required_mapping(message, param)
    role = required_choice(message.get("role"), field(param, "role"), ROLES)
    content = message.get("content")
    if isinstance(content, str):
        return
    blocks = required_array(content, field(param, "content"))
    for index, block in enumerate(blocks):
        _block(block, item(field(param, "content"), index), role)


def _block(block: Any, param: str, role: str) -> None:
    block = required_mapping(block, param)
    kind = required_string(block.get("type"), field(param, "type"))
    if kind not in BLOCKS[role]:
        raise invalid(
            field(param, "type"),
            f"'{field(param, 'type')}': a '{kind}' block is not supported in a {role} "
            f"turn; the gateway takes {', '.join(BLOCKS[role])}.",
            "unsupported_block",
        )
    if kind == "text":
        required_string(block.get("text"), field(param, "text"))
    elif kind == "image":
        _image_source(block.get("source"), field(param, "source"))
    elif kind == "tool_use":
        required_string(block.get("id"), field(param, "id"), nonempty=True)
        required_string(block.get("name"), field(param, "name"), nonempty=True)
        required_mapping(block.get("input"), field(param, "input"))
    elif kind == "tool_result":
        required_string(block.get("tool_use_id"), field(param, "tool_use_id"), nonempty=True)
        content = block.get("content")
        if not isinstance(content, str):
            _text_blocks(content, field(param, "content"))
        boolean(block.get("is_error"), field(param, "is_error"))


def _image_source(source: Any, param: str) -> None:
    source = required_mapping(source, param)
    kind = required_choice(source.get("type"), field(param, "type"), IMAGE_SOURCES)
    if kind == "base64":
        required_string(source.get("media_type"), field(param, "media_type"), nonempty=True)
        required_string(source.get("data"), field(param, "data"))
    else:
        required_string(source.get("url"), field(param, "url"), nonempty=True)


def _text_blocks(value: Any, param: str) -> None:
    """An array of text blocks (a system prompt, a tool result's content)."""
    for index, block in enumerate(array(value, param) or ()):
        block_param = item(param, index)
        block = required_mapping(block, block_param)
        if block.get("type") != "text":
            raise invalid(
                field(block_param, "type"),
                f"'{field(block_param, 'type')}' must be 'text': only text blocks are taken here.",
                "unsupported_block",
            )
        required_string(block.get("text"), field(block_param, "text"))


def _system(system: Any) -> None:
    if not isinstance(system, str):
        _text_blocks(system, "system")


def _tools(tools: Any) -> None:
    for index, tool in enumerate(array(tools, "tools") or ()):
        param = item("tools", index)
        tool = required_mapping(tool, param)
        required_string(tool.get("name"), field(param, "name"), nonempty=True)
        string(tool.get("description"), field(param, "description"))
        required_mapping(tool.get("input_schema"), field(param, "input_schema"))


def _tool_choice(value: Any) -> None:
    tool_choice = mapping(value, "tool_choice")
    if tool_choice is None:
        return
    kind = required_choice(tool_choice.get("type"), "tool_choice.type", TOOL_CHOICES)
    if kind == "tool":
        required_string(tool_choice.get("name"), "tool_choice.name", nonempty=True)
    boolean(tool_choice.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")
