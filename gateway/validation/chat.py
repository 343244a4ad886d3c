"""An OpenAI chat completion request: every field the gateway, the router or a
provider's translator reads is checked before it is used. Fields nobody here
reads pass through to the provider untouched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.validation.body import model_name, output_cap, stream_flags
from gateway.validation.fields import (
    array,
    choice,
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

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TOOL_CHOICES = ("none", "auto", "required")
MAX_STOP = 4
MAX_N = 128


def validate_chat(body: Mapping[str, Any]) -> tuple[str, list[Any], int | None, bool]:
    """(model, messages, max_tokens, stream) of a valid request; a 400 naming
    the first field that is not."""
    model = model_name(body)
    messages = required_array(body.get("messages"), "messages", nonempty=True)
    for index, message in enumerate(messages):
        _message(message, item("messages", index))
    _tools(body.get("tools"))
    _functions(body.get("functions"))
    _tool_choice(body.get("tool_choice"))
    stop = body.get("stop")
    if not isinstance(stop, str):
        strings(stop, "stop", most=MAX_STOP)
    integer(body.get("n"), "n", 1, MAX_N)
    number(body.get("temperature"), "temperature", 0, 2)
    number(body.get("top_p"), "top_p", 0, 1)
    _response_format(body.get("response_format"))
    stream = stream_flags(body)
    max_tokens = output_cap(body, "max_completion_tokens")
    legacy = output_cap(body, "max_tokens")
    return model, messages, max_tokens if max_tokens is not None else legacy, stream


def _message(message: Any, param: str) -> None:
    if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
        raise invalid(param, f"'{param}' must be an object with a string 'role'.")
    role = choice(message["role"], field(param, "role"), ROLES)
    content = message.get("content")
    if not isinstance(content, str):
        parts = array(content, field(param, "content"))
        for index, part in enumerate(parts or ()):
            _part(part, item(field(param, "content"), index))
    string(message.get("name"), field(param, "name"))
    calls = array(message.get("tool_calls"), field(param, "tool_calls"))
    for index, call in enumerate(calls or ()):
        _tool_call(call, item(field(param, "tool_calls"), index))
    if role == "tool":
        required_string(message.get("tool_call_id"), field(param, "tool_call_id"))
    else:
        string(message.get("tool_call_id"), field(param, "tool_call_id"))


def _part(part: Any, param: str) -> None:
    """A content part: `text` and `image_url` parts are read here; other kinds
    (audio, files, ...) pass through as they are."""
    if not isinstance(part, Mapping):
        raise invalid(param, f"'{param}' must be an object with a string 'type'.")
    kind = required_string(part.get("type"), field(param, "type"))
    if kind == "text":
        required_string(part.get("text"), field(param, "text"))
    elif kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            return
        if not isinstance(image, Mapping) or not isinstance(image.get("url"), str):
            raise invalid(
                field(param, "image_url"),
                f"'{field(param, 'image_url')}' must be a URL string or an object "
                "with a string 'url'.",
            )


def _tool_call(call: Any, param: str) -> None:
    call = required_mapping(call, param)
    required_string(call.get("id"), field(param, "id"))
    required_choice(call.get("type"), field(param, "type"), ("function",))
    function = required_mapping(call.get("function"), field(param, "function"))
    required_string(function.get("name"), field(param, "function.name"))
    required_string(function.get("arguments"), field(param, "function.arguments"))


def _function(function: Any, param: str) -> None:
    """A tool's function (or a legacy `functions` entry): name, description, parameters."""
    function = required_mapping(function, param)
    required_string(function.get("name"), field(param, "name"), nonempty=True)
    string(function.get("description"), field(param, "description"))
    mapping(function.get("parameters"), field(param, "parameters"))


def _tools(tools: Any) -> None:
    for index, tool in enumerate(array(tools, "tools") or ()):
        param = item("tools", index)
        tool = required_mapping(tool, param)
        required_choice(tool.get("type"), field(param, "type"), ("function",))
        _function(tool.get("function"), field(param, "function"))


def _functions(functions: Any) -> None:
    for index, function in enumerate(array(functions, "functions") or ()):
        _function(function, item("functions", index))


def _tool_choice(value: Any) -> None:
    if value is None or isinstance(value, str):
        choice(value, "tool_choice", TOOL_CHOICES)
        return
    chosen = required_mapping(value, "tool_choice")
    required_choice(chosen.get("type"), "tool_choice.type", ("function",))
    function = required_mapping(chosen.get("function"), "tool_choice.function")
    required_string(function.get("name"), "tool_choice.function.name", nonempty=True)


def _response_format(value: Any) -> None:
    response_format = mapping(value, "response_format")
    if response_format is None:
        return
    required_string(response_format.get("type"), "response_format.type", nonempty=True)
    schema = mapping(response_format.get("json_schema"), "response_format.json_schema")
    if schema is not None:
        mapping(schema.get("schema"), "response_format.json_schema.schema")
