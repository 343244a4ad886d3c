"""Typed checks of the fields of one object in a client's request body.

Each check reads `obj[key]` itself, so that the field's path in the body
(`messages[2].tool_calls[0].id`) is only spelled out when it fails. Each
failure is a 400 `invalid_request_error` naming that path, built by `invalid`,
the one place a request-body error is made. An absent field and a `null` one
are the same to every check: clients send `null` for "not set".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.errors import GatewayError, bad_request

Obj = Mapping[str, Any]


def invalid(param: str, message: str, code: str = "invalid_type") -> GatewayError:
    return bad_request(message, param=param, code=code)


def path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _wrong(parent: str, key: str, what: str, code: str = "invalid_type") -> GatewayError:
    where = path(parent, key)
    return invalid(where, f"'{where}' must be {what}.", code)


def _present(obj: Obj, key: str, parent: str) -> Any:
    """The field's value; a 400 when it is absent or null."""
    value = obj.get(key)
    if value is None:
        where = path(parent, key)
        raise invalid(where, f"Missing required parameter: '{where}'.", "missing")
    return value


def string(obj: Obj, key: str, parent: str = "") -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _wrong(parent, key, "a string")
    return value


def required_string(obj: Obj, key: str, parent: str = "", *, nonempty: bool = False) -> str:
    value = _present(obj, key, parent)
    if not isinstance(value, str) or (nonempty and not value):
        raise _wrong(parent, key, "a non-empty string" if nonempty else "a string")
    return value


def choice(obj: Obj, key: str, parent: str, choices: tuple[str, ...]) -> str | None:
    return None if obj.get(key) is None else required_choice(obj, key, parent, choices)


def required_choice(obj: Obj, key: str, parent: str, choices: tuple[str, ...]) -> str:
    value = _present(obj, key, parent)
    if not isinstance(value, str) or value not in choices:
        raise _wrong(parent, key, f"one of: {', '.join(choices)}", "invalid_value")
    return value


def boolean(obj: Obj, key: str, parent: str = "") -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise _wrong(parent, key, "a boolean")
    return value


def integer(obj: Obj, key: str, parent: str, low: int, high: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(parent, key, "an integer")
    _in_range(value, parent, key, low, high)
    return value


def number(obj: Obj, key: str, parent: str, low: int, high: int) -> int | float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(parent, key, "a number")
    _in_range(value, parent, key, low, high)
    return value


def _in_range(value: int | float, parent: str, key: str, low: int, high: int | None) -> None:
    # Compared as Decimal: exact for any JSON number, huge ones included.
    exact = Decimal(value)
    if exact < low or (high is not None and exact > high):
        limits = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _wrong(parent, key, limits, "invalid_value")


def mapping(obj: Obj, key: str, parent: str = "") -> Obj | None:
    return None if obj.get(key) is None else required_mapping(obj, key, parent)


def required_mapping(obj: Obj, key: str, parent: str = "") -> Obj:
    value = _present(obj, key, parent)
    if not isinstance(value, Mapping):
        raise _wrong(parent, key, "an object")
    return value


def array(obj: Obj, key: str, parent: str = "", *, most: int = 0) -> list[Any]:
    """The field's items; none when it is absent."""
    return [] if obj.get(key) is None else required_array(obj, key, parent, most=most)


def required_array(
    obj: Obj, key: str, parent: str = "", *, nonempty: bool = False, most: int = 0
) -> list[Any]:
    value = _present(obj, key, parent)
    if not isinstance(value, list) or (nonempty and not value):
        raise _wrong(parent, key, "a non-empty array" if nonempty else "an array")
    if most and len(value) > most:
        where = path(parent, key)
        raise invalid(where, f"'{where}' may hold at most {most} items.", "invalid_value")
    return value


def strings(obj: Obj, key: str, parent: str = "", *, most: int = 0) -> list[str]:
    """An array of strings; none when it is absent."""
    items = array(obj, key, parent, most=most)
    for index, entry in enumerate(items):
        if not isinstance(entry, str):
            where = path(path(parent, key), index)
            raise invalid(where, f"'{where}' must be a string.")
    return items


def element(value: Any, where: str) -> Obj:
    """An array's item that must be an object."""
    if not isinstance(value, Mapping):
        raise invalid(where, f"'{where}' must be an object.")
    return value
