"""The fields of an OpenAI Responses API request (`POST /v1/responses`) that the
gateway reads, checked before the request is translated into a chat request.
What the chat request's own checks cover (temperature, top_p, the model's name)
is checked there, after the translation.

The gateway keeps no responses: a request that would continue or store one is
refused with 400 `unsupported_parameter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import GatewayError, bad_request
from gateway.proxy.validation.fields import (
    Obj,
    array,
    boolean,
    element,
    integer,
    invalid,
    mapping,
    path,
    required_array,
    required_choice,
    required_mapping,
    required_string,
    string,
)

MAX_ITEMS = 10_000
MAX_METADATA_KEYS = 16
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text")
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")
_NOT_KEPT = (
    "The gateway does not keep responses, so '{name}' cannot be used: "
    "send the whole conversation in 'input'."
)


def unsupported(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="unsupported_parameter")


def validate_responses(body: Obj) -> None:
    """A 400 naming the first field the gateway cannot use as it is."""
    for name in ("previous_response_id", "conversation"):
        if body.get(name) is not None:
            raise unsupported(name, _NOT_KEPT.format(name=name))
    if body.get("store") is True:
        raise unsupported("store", _NOT_KEPT.format(name="store: true"))
    if body.get("background") is True:
        raise unsupported("background", "Background responses are not supported.")
    required_string(body, "model", nonempty=True)
    string(body, "instructions")
    _input(body)
    for index, tool in enumerate(array(body, "tools")):
        _tool(element(tool, f"tools[{index}]"), f"tools[{index}]")
    _tool_choice(body.get("tool_choice"))
    integer(body, "max_output_tokens", "", 1)
    boolean(body, "parallel_tool_calls")
    boolean(body, "stream")
    boolean(body, "store")
    string(body, "user")
    _text(mapping(body, "text"))
    _metadata(mapping(body, "metadata"))


def item_type(item: Mapping[str, Any]) -> str:
    """An input item's type: a bare `{role, content}` is a message."""
    kind = item.get("type")
    return kind if isinstance(kind, str) else "message"


def _input(body: Obj) -> None:
    value = body.get("input")
    if isinstance(value, str):
        if not value:
            raise invalid("input", "'input' must not be empty.", "invalid_value")
        return
    items = required_array(body, "input", nonempty=True, most=MAX_ITEMS)
    for index, raw in enumerate(items):
        where = f"input[{index}]"
        item = element(raw, where)
        kind = item_type(item)
        if kind not in ITEM_TYPES:
            raise invalid(
                path(where, "type"),
                f"'{where}.type' {kind!r} is not supported here: use "
                + ", ".join(repr(t) for t in ITEM_TYPES)
                + ".",
                "unsupported_value",
            )
        if kind == "message":
            _message(item, where)
        elif kind == "function_call":
            for name in ("call_id", "name"):
                required_string(item, name, where, nonempty=True)
            required_string(item, "arguments", where)
        elif kind == "function_call_output":
            required_string(item, "call_id", where, nonempty=True)
            if not isinstance(item.get("output"), str):
                _parts(item, "output", where)


def _message(item: Obj, where: str) -> None:
    required_choice(item, "role", where, ROLES)
    if not isinstance(item.get("content"), str):
        _parts(item, "content", where)


def _parts(item: Obj, key: str, where: str) -> None:
    parts = required_array(item, key, where)
    for index, raw in enumerate(parts):
        at = f"{path(where, key)}[{index}]"
        part = element(raw, at)
        kind = required_choice(part, "type", at, (*TEXT_PARTS, "input_image", "refusal"))
        if kind in TEXT_PARTS:
            required_string(part, "text", at)
        elif kind == "refusal":
            required_string(part, "refusal", at)
        else:
            required_string(part, "image_url", at, nonempty=True)


def _tool(tool: Obj, where: str) -> None:
    kind = tool.get("type")
    if kind != "function":
        raise invalid(
            path(where, "type"),
            f"Tools of type {kind!r} are not supported by the gateway; use 'function' tools.",
            "unsupported_value",
        )
    required_string(tool, "name", where, nonempty=True)
    string(tool, "description", where)
    mapping(tool, "parameters", where)
    boolean(tool, "strict", where)


def _tool_choice(choice: Any) -> None:
    if choice is None or choice in TOOL_CHOICES:
        return
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        required_string(choice, "name", "tool_choice", nonempty=True)
        return
    raise invalid(
        "tool_choice",
        "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", "
        '"name": ...}.',
        "invalid_value",
    )


def _text(text: Obj | None) -> None:
    if text is None:
        return
    fmt = mapping(text, "format", "text")
    if fmt is None:
        return
    kind = required_choice(fmt, "type", "text.format", FORMATS)
    if kind == "json_schema":
        required_string(fmt, "name", "text.format", nonempty=True)
        required_mapping(fmt, "schema", "text.format")
        boolean(fmt, "strict", "text.format")


def _metadata(metadata: Obj | None) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid("metadata", "'metadata' has at most 16 keys.", "invalid_value")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise invalid(path("metadata", key), f"'metadata.{key}' must be a string.")
