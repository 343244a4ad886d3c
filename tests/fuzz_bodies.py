"""Hypothesis strategies for the fuzz tests: a valid request body, mutated.

A mutation picks a few places in the body (any depth) and replaces the value
there with junk, removes it, empties it or wraps it in an array; the junk
favours the field names and `type` values the gateway and its translators
look for, so that mutated bodies get deep into them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

Path = tuple[str | int, ...]

KNOWN_KEYS = (
    "type", "text", "role", "content", "source", "url", "image_url", "function", "name",
    "arguments", "id", "input", "tool_use_id", "tool_call_id", "tool_calls", "media_type",
    "data", "parameters", "input_schema", "description", "is_error", "include_usage",
)  # fmt: skip
KNOWN_WORDS = (
    "", " ", "text", "image", "image_url", "tool_use", "tool_result", "thinking",
    "redacted_thinking", "function", "base64", "url", "user", "assistant", "system", "tool",
    "developer", "auto", "any", "none", "required", "json_object", "mock-1", "auto:fast",
    "\u0000", "\u202e", "🙂" * 3, "x" * 300, "data:image/png;base64,", "{", "{}",
)  # fmt: skip
# Numbers at and beyond the edges: JSON's safe integers, 64 bits, doubles.
EDGE_NUMBERS = (0, -1, 1, 2, 5, 129, 2**31, 2**53, -(2**63), 2**63 - 1, 10**30, 1e308, -0.0)

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_NUMBERS),
    _text,
    st.sampled_from(KNOWN_WORDS),
)
JUNK = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KNOWN_KEYS) | _text, children, max_size=3),
    ),
    max_leaves=6,
)


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every place in a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def _get(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def _same_kind(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the same JSON type: often still valid, but unusual."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.sampled_from(EDGE_NUMBERS)
    if isinstance(value, float):
        return st.floats(allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        return _text | st.sampled_from(KNOWN_WORDS)
    return JUNK


def _mutate(data: st.DataObject, body: Any) -> Any:
    path = data.draw(st.sampled_from(list(paths(body))))
    operation = data.draw(
        st.sampled_from(("junk", "junk", "tweak", "tweak", "drop", "empty", "wrap", "add"))
    )
    current = _get(body, path)
    if operation == "add" and isinstance(current, dict):
        current[data.draw(st.sampled_from(KNOWN_KEYS) | _text)] = data.draw(JUNK)
        return body
    if operation == "drop" and path:
        del _get(body, path[:-1])[path[-1]]
        return body
    if operation == "empty":
        new: Any = type(current)() if isinstance(current, str | list | dict) else None
    elif operation == "wrap":
        new = [current]
    elif operation == "tweak":
        new = data.draw(_same_kind(current))
    else:
        new = data.draw(JUNK)
    if not path:
        return new
    _get(body, path[:-1])[path[-1]] = new
    return body


def mutated(data: st.DataObject, base: dict[str, Any]) -> Any:
    """`base` (deep-copied) with up to 4 mutations; now and then none, which keeps
    valid requests in the mix."""
    body: Any = copy.deepcopy(base)
    for _ in range(data.draw(st.sampled_from((1, 1, 1, 2, 2, 3, 4, 0, 0)))):
        body = _mutate(data, body)
    return body


def encoded(data: st.DataObject, body: Any) -> bytes:
    """The body as JSON, now and then cut short, not JSON at all, or with a
    value nested around the depth JSON libraries stop at."""
    raw = json.dumps(body).encode()
    match data.draw(st.sampled_from(("json",) * 17 + ("cut", "garbage", "deep"))):
        case "cut":
            return raw[: len(raw) // 2]
        case "garbage":
            return b"\xff\xfe{nope"
        case "deep" if raw.startswith(b"{") and len(raw) > 2:
            depth = data.draw(st.sampled_from((200, 254, 255, 300, 1000, 1100)))
            return b'{"deep": ' + b"[" * depth + b"]" * depth + b", " + raw[1:]
        case _:
            return raw
