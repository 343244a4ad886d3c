"""The mock's JSON-schema example generator: valid examples (checked with
jsonschema) of the schemas tools and structured outputs use, exact values
where the rule is simple, and bounded output for hostile schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from gateway.providers.mock_content import MAX_CHARS, MAX_ITEMS, MAX_NODES, example_of

MAGIC = {  # LangChain's magic_function(input: int = Field(gt=-1000, lt=1000))
    "type": "object",
    "properties": {
        "input": {"type": "integer", "exclusiveMinimum": -1000, "exclusiveMaximum": 1000}
    },
    "required": ["input"],
}
JOKE = {
    "title": "Joke",
    "type": "object",
    "properties": {
        "setup": {"type": "string", "description": "question to set up a joke"},
        "punchline": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["setup"],
}
NESTED = {
    "type": "object",
    "properties": {
        "order": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "placed": {"type": "string", "format": "date-time"},
                "lines": {
                    "type": "array",
                    "minItems": 2,
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string", "minLength": 8, "maxLength": 8},
                            "qty": {"type": "integer", "minimum": 1, "maximum": 99},
                            "price": {"type": "number", "exclusiveMinimum": 0},
                        },
                        "required": ["sku", "qty", "price"],
                        "additionalProperties": False,
                    },
                },
                "status": {"enum": ["open", "shipped"]},
                "kind": {"const": "retail"},
                "gift": {"type": "boolean"},
                "note": {"type": ["null", "string"]},
            },
            "required": ["id", "lines", "status", "kind", "gift"],
        }
    },
    "required": ["order"],
}
REFS = {  # pydantic's shape for nested models, with a recursive one
    "$defs": {
        "Point": {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
        },
        "Tree": {
            "type": "object",
            "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
            },
            "required": ["label"],
        },
    },
    "type": "object",
    "properties": {
        "where": {"$ref": "#/$defs/Point"},
        "tree": {"$ref": "#/$defs/Tree"},
        "shape": {"oneOf": [{"$ref": "#/$defs/Point"}, {"type": "string"}]},
        "both": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
            ]
        },
    },
    "required": ["where", "tree", "shape", "both"],
}
BOUNDS = {
    "type": "object",
    "properties": {
        "positive": {"type": "integer", "minimum": 5},
        "negative": {"type": "integer", "maximum": -3},
        "open_low": {"type": "integer", "exclusiveMinimum": 0},
        "open_high": {"type": "number", "exclusiveMaximum": -0.5},
        "narrow": {"type": "number", "exclusiveMinimum": 0.25, "exclusiveMaximum": 0.75},
        "step": {"type": "integer", "minimum": 10, "multipleOf": 7},
        "ratio": {"type": "number", "minimum": 0.5},
        "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        "none": {"type": "array", "maxItems": 0},
        "many": {"type": "array", "minItems": 3, "items": {"type": "boolean"}},
        "short": {"type": "string", "maxLength": 2},
        "email": {"type": "string", "format": "email"},
    },
}


@pytest.mark.parametrize(
    "schema", [MAGIC, JOKE, NESTED, REFS, BOUNDS], ids=lambda s: s.get("title", "")
)
def test_examples_are_valid_against_their_schema(schema: dict[str, Any]):
    example = example_of(schema)
    jsonschema.validate(example, schema, format_checker=jsonschema.FormatChecker())
    assert example_of(schema) == example  # deterministic


def test_exact_values_for_the_simple_rules():
    assert example_of(MAGIC) == {"input": 0}
    assert example_of(JOKE) == {"setup": "setup", "punchline": "punchline"}
    assert example_of(BOUNDS) == {
        "positive": 5,
        "negative": -3,
        "open_low": 1,
        "open_high": -1.5,
        "narrow": 0.5,
        "step": 14,
        "ratio": 0.5,
        "tuple": ["tuple", 0],
        "none": [],
        "many": [True, True, True],
        "short": "sh",
        "email": "mock@example.com",
    }
    order = example_of(NESTED)["order"]
    assert order["lines"][0] == {"sku": "skuxxxxx", "qty": 1, "price": 1}
    assert (order["status"], order["kind"], order["gift"], order["note"]) == (
        "open",
        "retail",
        True,
        "note",
    )


def test_draft_4_exclusive_bounds():
    schema = {
        "type": "object",
        "properties": {
            "above": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
            "below": {"type": "number", "maximum": -2, "exclusiveMaximum": True},
        },
    }
    example = example_of(schema)
    jsonschema.Draft4Validator(schema).validate(example)
    assert example == {"above": 1, "below": -3}


def test_a_recursive_schema_ends():
    tree = example_of(REFS)["tree"]
    depth = 0
    while tree.get("children"):
        tree, depth = tree["children"][0], depth + 1
    assert 1 <= depth < 10


def test_a_function_without_parameters_gets_an_empty_object():
    assert example_of({"type": "object", "properties": {}}) == {}
    assert example_of({"type": "object"}) == {}


@pytest.mark.parametrize(
    "schema",
    [
        None,
        [1, 2],
        "string",
        True,
        {"type": 7},
        {"type": ["nonsense"]},
        {"$ref": "https://example.com/elsewhere"},
        {"$ref": "#/nowhere/at/all"},
        {"$ref": 5},
        {"anyOf": "x"},
        {"allOf": [1, {"properties": 3, "required": "x"}]},
        {"properties": ["a"], "required": [1, "b"]},
        {"type": "integer", "minimum": "5", "multipleOf": -2},
        {"type": "number", "minimum": 10, "maximum": 1},
        {"type": "string", "minLength": 10**9},
        {"type": "array", "minItems": 10**9, "items": {"type": "array", "minItems": 10**9}},
        {"$ref": "#"},
    ],
)
def test_hostile_schemas_give_a_bounded_json_value(schema: Any):
    written = orjson.dumps(example_of(schema))
    assert len(written) < 100_000


def test_a_huge_schema_is_cut_at_the_node_budget():
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5000)}}
    example = example_of(wide)
    assert sum(v is not None for v in example.values()) == MAX_NODES - 1
    deep = {"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}}
    assert len(example_of(deep)) == MAX_ITEMS
    long = {"type": "array", "minItems": 50, "items": {"type": "string", "minLength": 10**6}}
    assert sum(len(s) for s in example_of(long)) == MAX_CHARS
