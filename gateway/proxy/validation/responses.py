"""An OpenAI Responses request (POST /v1/responses): its shape checked in full
before it is translated to the gateway's internal form, OpenAI chat.

The gateway keeps no responses, so whatever needs a stored one is refused by
name (`previous_response_id`, `conversation`, `background`, `store: true`, an
`item_reference`); so is any field, item, part or tool the translation cannot
carry, rather than dropped. Reasoning items are the exception: they are the
model's own earlier reasoning, which a chat request has no place for.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import GatewayError, bad_request
from gateway.proxy.validation.body import model_name, output_cap
from gateway.proxy.validation.fields import (
    Obj,
    array,
    boolean,
    choice,
    element,
    invalid,
    mapping,
    number,
    path,
    required_choice,
    required_mapping,
    required_string,
    string,
    strings,
)

ROLES = ("user", "assistant", "system", "developer")
ITEMS = ("message", "function_call", "function_call_output", "reasoning")
PARTS = {
    "user": ("input_text", "input_image"),
    "system": ("input_text",),
    "developer": ("input_text",),
    "assistant": ("output_text", "refusal", "input_text"),
}
TOOL_CHOICES = ("none", "auto", "required")
FORMATS = ("text", "json_object", "json_schema")
IMAGE_DETAILS = ("auto", "low", "high")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed")
VERBOSITY = ("low", "medium", "high")
TRUNCATION = ("auto", "disabled")
MAX_METADATA = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# What the gateway does with each field it takes; any other is refused by name.
CARRIED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "metadata",
        "user",
        "stream",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
    }
)
# Taken and checked, with nothing to do: the gateway stores nothing and truncates nothing.
IGNORED = frozenset({"store", "include", "truncation", "stream_options", "background"})
NOT_KEPT = (
    "the gateway does not keep responses, so it cannot continue one: "
    "send the whole conversation in 'input' instead."
)


def validate_responses(body: Obj) -> None:
    """A 400 naming the first field of a Responses request that is not valid."""
    model_name(body)
    _stateless(body)
    for key in body:
        if key not in CARRIED and key not in IGNORED:
            raise unsupported(key, f"The gateway does not support '{key}' on /v1/responses.")
    _input(body)
    string(body, "instructions")
    names = _tools(body)
    _tool_choice(body, names)
    boolean(body, "parallel_tool_calls")
    output_cap(body, "max_output_tokens")
    number(body, "temperature", "", 0, 2)
    number(body, "top_p", "", 0, 1)
    _text(body)
    _reasoning(body)
    _metadata(body)
    for name in ("user", "service_tier", "prompt_cache_key", "safety_identifier"):
        string(body, name)
    boolean(body, "stream")
    strings(body, "include")
    choice(body, "truncation", "", TRUNCATION)
    options = mapping(body, "stream_options")
    if options is not None:
        boolean(options, "include_obfuscation", "stream_options")


def unsupported(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code="unsupported_parameter")


def _stateless(body: Obj) -> None:
    """Refuse what only a gateway that keeps responses could do."""
    for name in ("previous_response_id", "conversation"):
        if body.get(name) is not None:
            raise unsupported(name, f"'{name}' cannot be served: {NOT_KEPT}")
    if boolean(body, "background"):
        raise unsupported(
            "background",
            "'background' cannot be served: the gateway does not keep responses, so it cannot "
            "run one in the background. Leave 'background' out, or stream the response.",
        )
    if boolean(body, "store"):
        raise unsupported(
            "store",
            "'store' cannot be true: the gateway does not keep responses. Send 'store': false "
            "(or leave it out), and the whole conversation in 'input' on every turn.",
        )


def _input(body: Obj) -> None:
    value = body.get("input")
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not value:
        raise invalid("input", "'input' must be a string or a non-empty array of input items.")
    calls: set[str] = set()
    for index, item in enumerate(value):
        where = f"input[{index}]"
        kind = _item(item, where)
        call_id = item.get("call_id")
        if kind == "function_call":
            calls.add(call_id)
        elif kind == "function_call_output" and call_id not in calls:
            raise invalid(
                f"{where}.call_id",
                f"'{where}.call_id' is '{call_id}', which no earlier function_call item has: "
                "send the call before its output.",
                "invalid_value",
            )


def _item(item: Any, where: str) -> str:
    """The item's type, once it is checked."""
    item = element(item, where)
    kind = string(item, "type", where) or "message"  # a message may leave its type out
    if kind == "item_reference":
        raise unsupported(
            path(where, "type"),
            f"'{where}' refers to a stored item, and the gateway keeps none: send the item itself.",
        )
    if kind not in ITEMS:
        at = path(where, "type")
        raise invalid(
            at,
            f"'{at}': '{kind}' items are not supported; the gateway takes {', '.join(ITEMS)}.",
            "invalid_value",
        )
    for name in ("id", "status"):
        string(item, name, where)  # kept by clients from an earlier answer; not needed
    if kind == "message":
        _message(item, where)
    elif kind == "function_call":
        required_string(item, "call_id", where, nonempty=True)
        required_string(item, "name", where, nonempty=True)
        required_string(item, "arguments", where)
    elif kind == "function_call_output":
        required_string(item, "call_id", where, nonempty=True)
        _call_output(item, where)
    return kind


def _message(item: Obj, where: str) -> None:
    role = required_choice(item, "role", where, ROLES)
    if isinstance(item.get("content"), str):
        return
    content = item.get("content")
    if not isinstance(content, list) or not content:
        at = path(where, "content")
        raise invalid(at, f"'{at}' must be a string or a non-empty array of content parts.")
    for index, part in enumerate(content):
        _part(part, f"{where}.content[{index}]", PARTS[role], f"a {role} message")


def _part(part: Any, where: str, kinds: tuple[str, ...], holder: str) -> None:
    part = element(part, where)
    kind = required_string(part, "type", where)
    if kind not in kinds:
        at = path(where, "type")
        raise invalid(
            at,
            f"'{at}': '{kind}' parts are not supported in {holder}; "
            f"the gateway takes {', '.join(kinds)}.",
            "invalid_value",
        )
    if kind in ("input_text", "output_text"):
        required_string(part, "text", where)
    elif kind == "refusal":
        required_string(part, "refusal", where)
    else:  # input_image
        if part.get("file_id") is not None:
            raise unsupported(
                path(where, "file_id"),
                f"'{path(where, 'file_id')}': the gateway keeps no files; "
                "send the image as 'image_url' (a URL or a data URL).",
            )
        required_string(part, "image_url", where, nonempty=True)
        choice(part, "detail", where, IMAGE_DETAILS)


def _call_output(item: Obj, where: str) -> None:
    """A tool's output goes back to the model as text: a string or input_text parts."""
    output = item.get("output")
    if isinstance(output, str):
        return
    if not isinstance(output, list):
        at = path(where, "output")
        raise invalid(at, f"'{at}' must be a string or an array of input_text parts.")
    for index, part in enumerate(output):
        _part(part, f"{where}.output[{index}]", ("input_text",), "a function call's output")


def _tools(body: Obj) -> set[str]:
    """The function tools' names."""
    names: set[str] = set()
    for index, tool in enumerate(array(body, "tools")):
        where = f"tools[{index}]"
        tool = element(tool, where)
        kind = required_string(tool, "type", where)
        if kind != "function":
            at = path(where, "type")
            raise invalid(
                at,
                f"'{at}': '{kind}' tools are not supported; the gateway takes function tools "
                "only, which your code runs.",
                "invalid_value",
            )
        names.add(required_string(tool, "name", where, nonempty=True))
        string(tool, "description", where)
        mapping(tool, "parameters", where)
        boolean(tool, "strict", where)
    return names


def _tool_choice(body: Obj, names: set[str]) -> None:
    if body.get("tool_choice") is None or isinstance(body["tool_choice"], str):
        choice(body, "tool_choice", "", TOOL_CHOICES)
        return
    chosen = required_mapping(body, "tool_choice")
    required_choice(chosen, "type", "tool_choice", ("function",))
    name = required_string(chosen, "name", "tool_choice", nonempty=True)
    if name not in names:
        raise invalid(
            "tool_choice.name",
            f"'tool_choice.name' is '{name}', which is not the name of a function in 'tools'.",
            "invalid_value",
        )


def _text(body: Obj) -> None:
    text = mapping(body, "text")
    if text is None:
        return
    choice(text, "verbosity", "text", VERBOSITY)
    form = mapping(text, "format", "text")
    if form is None:
        return
    if required_choice(form, "type", "text.format", FORMATS) != "json_schema":
        return
    name = required_string(form, "name", "text.format")
    if not _SCHEMA_NAME.match(name):
        raise invalid(
            "text.format.name",
            "'text.format.name' must be 1 to 64 letters, digits, underscores or dashes.",
            "invalid_value",
        )
    required_mapping(form, "schema", "text.format")
    string(form, "description", "text.format")
    boolean(form, "strict", "text.format")


def _reasoning(body: Obj) -> None:
    reasoning = mapping(body, "reasoning")
    if reasoning is not None:
        choice(reasoning, "effort", "reasoning", EFFORTS)
        choice(reasoning, "summary", "reasoning", SUMMARIES)
        choice(reasoning, "generate_summary", "reasoning", SUMMARIES)


def _metadata(body: Obj) -> None:
    """At most 16 string values under keys of at most 64 characters, as OpenAI's."""
    metadata = mapping(body, "metadata")
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA:
        raise invalid(
            "metadata", f"'metadata' may hold at most {MAX_METADATA} keys.", "invalid_value"
        )
    for key, value in metadata.items():
        at = path("metadata", key)
        if len(key) > MAX_METADATA_KEY:
            raise invalid(
                "metadata",
                f"'metadata' keys may be at most {MAX_METADATA_KEY} characters long.",
                "invalid_value",
            )
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
            raise invalid(
                at, f"'{at}' must be a string of at most {MAX_METADATA_VALUE} characters."
            )
