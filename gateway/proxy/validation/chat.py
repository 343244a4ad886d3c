"""An OpenAI chat completion request: every field the gateway, the router or a
provider's translator reads is checked before it is used. Fields nobody here
reads pass through to the provider untouched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.proxy.validation.body import model_name, output_cap, stream_flags
from gateway.proxy.validation.fields import (
    Obj,
    array,
    choice,
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

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICES = ("none", "auto", "required")
FUNCTION = ("function",)
MAX_STOP = 4
MAX_N = 128


def validate_chat(body: Obj) -> tuple[str, list[Any], int | None, bool]:
    """(model, messages, max_tokens, stream) of a valid request; a 400 naming
    the first field that is not."""
    model = model_name(body)
    messages = required_array(body, "messages", nonempty=True)
    for index, message in enumerate(messages):
        _message(message, f"messages[{index}]")
    for index, tool in enumerate(array(body, "tools")):
        where = f"tools[{index}]"
        tool = element(tool, where)
        required_choice(tool, "type", where, FUNCTION)
        _function(required_mapping(tool, "function", where), f"{where}.function")
    for index, function in enumerate(array(body, "functions")):  # the legacy form of tools
        _function(element(function, f"functions[{index}]"), f"functions[{index}]")
    _tool_choice(body)
    if not isinstance(body.get("stop"), str):
        strings(body, "stop", most=MAX_STOP)
    integer(body, "n", "", 1, MAX_N)
    number(body, "temperature", "", 0, 2)
    number(body, "top_p", "", 0, 1)
    _response_format(body)
    stream = stream_flags(body)
    max_tokens = output_cap(body, "max_completion_tokens")
    legacy = output_cap(body, "max_tokens")
    return model, messages, max_tokens if max_tokens is not None else legacy, stream


def _message(message: Any, where: str) -> None:
    if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
        raise invalid(where, f"'{where}' must be an object with a string 'role'.")
    role = required_choice(message, "role", where, ROLES)
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        for index, part in enumerate(required_array(message, "content", where)):
            _part(part, f"{where}.content[{index}]")
    string(message, "name", where)
    for index, call in enumerate(array(message, "tool_calls", where)):
        _tool_call(call, f"{where}.tool_calls[{index}]")
    if role == "tool":
        required_string(message, "tool_call_id", where)
    else:
        string(message, "tool_call_id", where)


def _part(part: Any, where: str) -> None:
    """A content part: `text` and `image_url` parts are read here; other kinds
    (audio, files, ...) pass through as they are."""
    if not isinstance(part, Mapping):
        raise invalid(where, f"'{where}' must be an object with a string 'type'.")
    kind = required_string(part, "type", where)
    if kind == "text":
        required_string(part, "text", where)
    elif kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            return
        if not isinstance(image, Mapping) or not isinstance(image.get("url"), str):
            at = path(where, "image_url")
            raise invalid(at, f"'{at}' must be a URL string or an object with a string 'url'.")


def _tool_call(call: Any, where: str) -> None:
    call = element(call, where)
    required_string(call, "id", where)
    required_choice(call, "type", where, FUNCTION)
    function = required_mapping(call, "function", where)
    required_string(function, "name", f"{where}.function")
    required_string(function, "arguments", f"{where}.function")


def _function(function: Obj, where: str) -> None:
    """A tool's function (or a legacy `functions` entry): name, description, parameters."""
    required_string(function, "name", where, nonempty=True)
    string(function, "description", where)
    mapping(function, "parameters", where)


def _tool_choice(body: Obj) -> None:
    if body.get("tool_choice") is None or isinstance(body["tool_choice"], str):
        choice(body, "tool_choice", "", TOOL_CHOICES)
        return
    chosen = required_mapping(body, "tool_choice")
    required_choice(chosen, "type", "tool_choice", FUNCTION)
    function = required_mapping(chosen, "function", "tool_choice")
    required_string(function, "name", "tool_choice.function", nonempty=True)


def _response_format(body: Obj) -> None:
    response_format = mapping(body, "response_format")
    if response_format is None:
        return
    required_string(response_format, "type", "response_format", nonempty=True)
    schema = mapping(response_format, "json_schema", "response_format")
    if schema is not None:
        mapping(schema, "schema", "response_format.json_schema")
