"""Typed checks of single values in a client's request body.

Each failure is a 400 `invalid_request_error` whose `param` is the value's
place in the body (`messages[2].tool_calls[0].id`), built by `invalid`, the one
place a request-body error is made. A value that is absent or `null` is None
to every optional check: clients send `null` for "not set".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.errors import GatewayError, bad_request


def invalid(param: str, message: str, code: str = "invalid_type") -> GatewayError:
    return bad_request(message, param=param, code=code)


def missing(param: str) -> GatewayError:
    return invalid(param, f"Missing required parameter: '{param}'.", "missing")


def field(param: str, name: str) -> str:
    return f"{param}.{name}" if param else name


def item(param: str, index: int) -> str:
    return f"{param}[{index}]"


def string(value: Any, param: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise invalid(param, f"'{param}' must be a string.")
    return value


def required_string(value: Any, param: str, *, nonempty: bool = False) -> str:
    if value is None:
        raise missing(param)
    if not isinstance(value, str) or (nonempty and not value):
        what = "a non-empty string" if nonempty else "a string"
        raise invalid(param, f"'{param}' must be {what}.")
    return value


def choice(value: Any, param: str, choices: tuple[str, ...]) -> str | None:
    return None if value is None else required_choice(value, param, choices)


def required_choice(value: Any, param: str, choices: tuple[str, ...]) -> str:
    if value is None:
        raise missing(param)
    if not isinstance(value, str) or value not in choices:
        raise invalid(param, f"'{param}' must be one of: {', '.join(choices)}.", "invalid_value")
    return value


def boolean(value: Any, param: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise invalid(param, f"'{param}' must be a boolean.")
    return value


def integer(value: Any, param: str, low: int, high: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(param, f"'{param}' must be an integer.")
    _in_range(value, param, low, high)
    return value


def number(value: Any, param: str, low: int, high: int) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(param, f"'{param}' must be a number.")
    _in_range(value, param, low, high)
    return value


def _in_range(value: int | float, param: str, low: int, high: int | None) -> None:
    # Compared as Decimal: exact for any JSON number, huge ones included.
    exact = Decimal(value)
    if exact < low or (high is not None and exact > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise invalid(param, f"'{param}' must be {limits}.", "invalid_value")


def mapping(value: Any, param: str) -> Mapping[str, Any] | None:
    return None if value is None else required_mapping(value, param)


def required_mapping(value: Any, param: str) -> Mapping[str, Any]:
    if value is None:
        raise missing(param)
    if not isinstance(value, Mapping):
        raise invalid(param, f"'{param}' must be an object.")
    return value


def array(value: Any, param: str, *, most: int = 0) -> list[Any] | None:
    return None if value is None else required_array(value, param, most=most)


def required_array(value: Any, param: str, *, nonempty: bool = False, most: int = 0) -> list[Any]:
    if value is None:
        raise missing(param)
    if not isinstance(value, list) or (nonempty and not value):
        what = "a non-empty array" if nonempty else "an array"
        raise invalid(param, f"'{param}' must be {what}.")
    if most and len(value) > most:
        raise invalid(param, f"'{param}' may hold at most {most} items.", "invalid_value")
    return value


def strings(value: Any, param: str, *, most: int = 0) -> list[str] | None:
    """An array of strings."""
    items = array(value, param, most=most)
    for index, entry in enumerate(items or ()):
        if not isinstance(entry, str):
            raise invalid(item(param, index), f"'{item(param, index)}' must be a string.")
    return items
