"""An Anthropic Messages request (POST /v1/messages): its shape checked in
full before it is translated to the gateway's internal form, OpenAI chat.

Whatever the translation cannot carry is refused by name rather than dropped,
except thinking blocks in assistant turns: they are the model's own earlier
reasoning, which an OpenAI chat request has no place for.
"""

from __future__ import annotations

from typing import Any

from gateway.proxy.validation.body import model_name
from gateway.proxy.validation.chat import MAX_STOP
from gateway.proxy.validation.fields import (
    Obj,
    array,
    boolean,
    element,
    integer,
    invalid,
    mapping,
    number,
    path,
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


def validate_messages(body: Obj) -> None:
    """A 400 naming the first field of an Anthropic request that is not valid."""
    model_name(body)
    if body.get("max_tokens") is None:
        raise invalid("max_tokens", "Missing required parameter: 'max_tokens'.", "missing")
    integer(body, "max_tokens", "", 1)
    _prompt(body)
    strings(body, "stop_sequences", most=MAX_STOP)
    number(body, "temperature", "", 0, 1)
    number(body, "top_p", "", 0, 1)
    integer(body, "top_k", "", 0)
    mapping(body, "metadata")
    boolean(body, "stream")


def validate_count_tokens(body: Obj) -> None:
    """A token-counting request (POST /v1/messages/count_tokens): the prompt of a
    Messages request, and nothing about its answer (`thinking` is ignored)."""
    model_name(body)
    _prompt(body)


def _prompt(body: Obj) -> None:
    """The messages, the system prompt and the tools."""
    for index, message in enumerate(required_array(body, "messages", nonempty=True)):
        _message(message, f"messages[{index}]")
    if not isinstance(body.get("system"), str):
        _text_blocks(body, "system", "")
    for index, tool in enumerate(array(body, "tools")):
        where = f"tools[{index}]"
        tool = element(tool, where)
        required_string(tool, "name", where, nonempty=True)
        string(tool, "description", where)
        required_mapping(tool, "input_schema", where)
    _tool_choice(body)


def _message(message: Any, where: str) -> None:
    message = element(message, where)
    role = required_choice(message, "role", where, ROLES)
    if isinstance(message.get("content"), str):
        return
    for index, block in enumerate(required_array(message, "content", where)):
        _block(block, f"{where}.content[{index}]", role)


def _block(block: Any, where: str, role: str) -> None:
    block = element(block, where)
    kind = required_string(block, "type", where)
    if kind not in BLOCKS[role]:
        at = path(where, "type")
        raise invalid(
            at,
            f"'{at}': a '{kind}' block is not supported in a {role} turn; "
            f"the gateway takes {', '.join(BLOCKS[role])}.",
            "unsupported_block",
        )
    if kind == "text":
        required_string(block, "text", where)
    elif kind == "image":
        _image_source(required_mapping(block, "source", where), f"{where}.source")
    elif kind == "tool_use":
        required_string(block, "id", where, nonempty=True)
        required_string(block, "name", where, nonempty=True)
        required_mapping(block, "input", where)
    elif kind == "tool_result":
        required_string(block, "tool_use_id", where, nonempty=True)
        if not isinstance(block.get("content"), str):
            _text_blocks(block, "content", where)
        boolean(block, "is_error", where)


def _image_source(source: Obj, where: str) -> None:
    if required_choice(source, "type", where, IMAGE_SOURCES) == "base64":
        required_string(source, "media_type", where, nonempty=True)
        required_string(source, "data", where)
    else:
        required_string(source, "url", where, nonempty=True)


def _text_blocks(obj: Obj, key: str, parent: str) -> None:
    """An array of text blocks (a system prompt, a tool result's content), if present."""
    where = path(parent, key)
    for index, block in enumerate(array(obj, key, parent)):
        at = f"{where}[{index}]"
        if element(block, at).get("type") != "text":
            raise invalid(
                f"{at}.type",
                f"'{at}.type' must be 'text': only text blocks are taken here.",
                "unsupported_block",
            )
        required_string(block, "text", at)


def _tool_choice(body: Obj) -> None:
    tool_choice = mapping(body, "tool_choice")
    if tool_choice is None:
        return
    if required_choice(tool_choice, "type", "tool_choice", TOOL_CHOICES) == "tool":
        required_string(tool_choice, "name", "tool_choice", nonempty=True)
    boolean(tool_choice, "disable_parallel_tool_use", "tool_choice")
