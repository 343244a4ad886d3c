"""Typed reads of a provider's JSON, which is checked like a client's.

Each accessor returns the value when it has the expected type and raises
`Malformed` (naming the field) when it does not; the stream driver and the
response parsers turn that into a 502 `upstream_error`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Malformed(ValueError):
    """A provider's answer does not have the shape its wire format promises."""


def obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Malformed(f"{what} is not an object")
    return value


def opt_obj(value: Any, what: str) -> Mapping[str, Any]:
    """An optional object: None reads as empty."""
    return {} if value is None else obj(value, what)


def items(value: Any, what: str) -> list[Mapping[str, Any]]:
    """An optional array of objects: None reads as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{what} is not an array")
    for index, item in enumerate(value):
        obj(item, f"{what}[{index}]")
    return value


def opt_str(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{what} is not a string")
    return value


def text(value: Any, what: str) -> str:
    """An optional string: None reads as empty."""
    return opt_str(value, what) or ""


def index(value: Any, what: str, default: int = 0) -> int:
    """A small non-negative integer (a choice's or a block's index)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10_000:
        raise Malformed(f"{what} is not an index")
    return value


def error_message(payload: Mapping[str, Any]) -> str | None:
    """The message of an error object sent where an answer was expected
    (OpenAI, Anthropic and Gemini all put it at error.message), or None."""
    error = payload.get("error")
    if not error:
        return None
    if isinstance(error, Mapping):
        message = error.get("message")
        return message[:500] if isinstance(message, str) else "no details"
    return str(error)[:500]
