"""A value that satisfies a JSON schema, for the mock provider's tool-call
arguments and structured outputs. Pure and deterministic.

It reads the parts of JSON Schema that tools and structured outputs use:
`type` (one or a list), objects (every listed property is filled in, the
optional ones only down to OPTIONAL_DEPTH so that a recursive schema ends),
arrays (`items`, `prefixItems`, `minItems`, `maxItems`), strings (`minLength`,
`maxLength`, common `format`s; otherwise the property's name), numbers and
integers (inclusive and exclusive bounds, `multipleOf`; zero when allowed),
booleans, null, `enum`, `const`, `anyOf`/`oneOf` (the first branch that is not
just null), `allOf` (merged) and local `$ref`s. `pattern` and `uniqueItems` are
not honoured. The schema comes from a client, so nothing about it is trusted:
depth and size are bounded, and a part that cannot be read yields null rather
than an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32  # nesting (and `$ref` hops) followed before giving up with null
OPTIONAL_DEPTH = 8  # below this, only required properties are filled in
MAX_NODES = 2_000  # values generated in all, so that no schema makes a huge answer
MAX_ITEMS = 64  # items of one array, whatever its minItems asks
MAX_CHARS = 16_384  # characters of all strings together, whatever their minLength asks

FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def example_of(schema: Any) -> Any:
    """A value valid against `schema` (as far as the parts named above go)."""
    return _Generator(schema).value(schema, "text", 0)


class _Generator:
    def __init__(self, root: Any) -> None:
        self._root = root
        self._nodes = 0
        self._chars = MAX_CHARS  # left for strings

    def value(self, schema: Any, name: str, depth: int) -> Any:
        self._nodes += 1
        if depth > MAX_DEPTH or self._nodes > MAX_NODES:
            return None
        if schema is True or not isinstance(schema, Mapping):
            return None if schema is False else name
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"]), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self.value(_first_not_null(branches), name, depth + 1)
        if isinstance(schema.get("allOf"), list):
            return self.value(_merged(schema), name, depth + 1)
        kind = _kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return _number(schema, integer=True)
        if kind == "number":
            return _number(schema, integer=False)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        text = _string(schema, name, self._chars)
        self._chars -= len(text)
        return text

    def _resolve(self, ref: Any) -> Any:
        """A local reference (`#/$defs/Name`); anything else resolves to null."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            return False
        node = self._root
        for raw in ref[1:].split("/")[1:] if ref != "#" else ():
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False
        return node

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        must = {n for n in required if isinstance(n, str)} if isinstance(required, list) else set()
        # Optional properties stop at some depth, so that a recursive schema ends.
        names = [str(n) for n in properties if depth < OPTIONAL_DEPTH or n in must]
        names += sorted(n for n in must if n not in properties)
        return {n: self.value(properties.get(n, {}), n, depth + 1) for n in names}

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # the older tuple form
            prefix, items = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        least = _whole(schema.get("minItems"), 0)
        most = _whole(schema.get("maxItems"), MAX_ITEMS)
        count = min(max(least, len(prefix), 1), most, MAX_ITEMS)
        if items is False:  # nothing beyond the prefix is allowed
            count = min(count, len(prefix))
        schemas = [*prefix[:count], *[items if items is not None else {}] * (count - len(prefix))]
        return [self.value(s, name, depth + 1) for s in schemas]


def _first_not_null(branches: list[Any]) -> Any:
    """The first branch, unless it only allows null and another does more."""
    for branch in branches:
        if not (isinstance(branch, Mapping) and branch.get("type") == "null"):
            return branch
    return branches[0]


def _merged(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`allOf`'s parts folded into one schema: properties and required joined."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    own_properties, own_required = merged.get("properties"), merged.get("required")
    properties = dict(own_properties) if isinstance(own_properties, Mapping) else {}
    required = list(own_required) if isinstance(own_required, list) else []
    for part in schema["allOf"]:
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required += value
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _kind(schema: Mapping[str, Any]) -> str:
    """The type to generate: the first named one that is not null, else guessed
    from the keywords present."""
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k in _TYPES]
        kind = next((k for k in named if k != "null"), named[0] if named else None)
    if kind in _TYPES:
        return str(kind)
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _whole(raw: Any, default: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        return default
    return raw


def _string(schema: Mapping[str, Any], name: str, room: int) -> str:
    """The format's example or the name, padded to minLength, cut to maxLength
    and to the `room` left."""
    fmt = schema.get("format")
    text = FORMATS.get(fmt, name) if isinstance(fmt, str) else name
    least = _whole(schema.get("minLength"), 0)
    if len(text) < least:
        text += "x" * (min(least, room) - len(text))
    most = _whole(schema.get("maxLength"), len(text))
    return text[: max(min(most, room), 0)]


def _bound(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return raw


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    """Zero if the bounds allow it, else the allowed value nearest to zero."""
    low, high = _bound(schema.get("minimum")), _bound(schema.get("maximum"))
    low_open, high_open = (
        _bound(schema.get("exclusiveMinimum")),
        _bound(schema.get("exclusiveMaximum")),
    )
    # Draft 4 writes an exclusive bound as a boolean beside minimum/maximum.
    if schema.get("exclusiveMinimum") is True and low is not None:
        low, low_open = None, low
    if schema.get("exclusiveMaximum") is True and high is not None:
        high, high_open = None, high
    step = _bound(schema.get("multipleOf"))
    if step is not None and step <= 0:
        step = None
    if integer:
        step = 1 if step is None else step
    lowest = _lowest(low, low_open, high, high_open, step)
    if lowest is not None and lowest > 0:
        value: float = lowest
    else:
        highest = _highest(low, low_open, high, high_open, step)
        value = highest if highest is not None and highest < 0 else 0
    if integer or float(value).is_integer():
        return int(value)
    return value


def _lowest(
    low: float | None,
    low_open: float | None,
    high: float | None,
    high_open: float | None,
    step: float | None,
) -> float | None:
    """The smallest allowed value, when there is a lower bound."""
    if low is None and low_open is None:
        return None
    floor = max(b for b in (low, low_open) if b is not None)
    if step is None:
        if low_open is None or floor != low_open:
            return floor
        ceiling = _ceiling(high, high_open)
        return floor + 1 if ceiling is None or floor + 1 < ceiling else (floor + ceiling) / 2
    value = math.ceil(floor / step) * step
    if low_open is not None and value <= low_open:
        value += step
    return value


def _highest(
    low: float | None,
    low_open: float | None,
    high: float | None,
    high_open: float | None,
    step: float | None,
) -> float | None:
    """The largest allowed value, when there is an upper bound."""
    mirrored = _lowest(
        None if high is None else -high,
        None if high_open is None else -high_open,
        None if low is None else -low,
        None if low_open is None else -low_open,
        step,
    )
    return None if mirrored is None else -mirrored


def _ceiling(high: float | None, high_open: float | None) -> float | None:
    bounds = [b for b in (high, high_open) if b is not None]
    return min(bounds) if bounds else None
