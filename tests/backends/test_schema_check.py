"""Schemas are refused with a pointer to the bad part, or compile in llama.cpp's real grammar parser."""

from __future__ import annotations

from typing import Any

import pytest
from grammar_engine import compiles
from pydantic import BaseModel, Field

from owstack.backends import schema_check
from owstack.backends.gbnf import json_object_gbnf, to_gbnf
from owstack.errors import InvalidRequest

REFUSED = [
    (
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}},
        "/properties/a/pattern",
        "back-reference",
    ),
    ({"type": "string", "pattern": "^(?=a).*$"}, "/pattern", "lookahead"),
    ({"type": "string", "pattern": "\\bword\\b"}, "/pattern", "word boundar"),
    ({"$ref": "https://example.com/schema.json"}, "/$ref", "only local references"),
    ({"properties": {"a": {"$ref": "#/$defs/Missing"}}}, "/properties/a/$ref", "does not exist"),
    ({"$ref": "#anchor"}, "/$ref", "anchor"),
    ({"type": "strin"}, "/type", "invalid `type`"),
    ({"type": ["string", 3]}, "/type", "invalid `type`"),
    ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "/properties/a/not", "`not`"),
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "/uniqueItems", "uniqueItems"),
    ({"type": "string", "minLength": 5, "maxLength": 2}, "/minLength", "nothing can match"),
    ({"type": "string", "maxLength": 100000}, "/maxLength", "at most"),
    ({"type": "string", "format": "hostname"}, "/format", "hostname"),
    ({"type": "number", "minimum": 0.5}, "/minimum", "whole-number"),
    ({"enum": []}, "/enum", "non-empty"),
    (
        {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"anyOf": [{"$ref": "#/$defs/A"}]}}, "$ref": "#/$defs/A"},
        "",
        "never nests",
    ),
    (
        {
            "$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}, "required": ["n"]}},
            "$ref": "#/$defs/N",
        },
        "",
        "no finite instance",
    ),
    ({"type": "object", "properties": {"a": 3}}, "/properties/a", "not a schema"),
    # keywords of the wrong kind (a TypeError, so a 500, before they were checked first)
    ({"type": "object", "properties": 5}, "/properties", "must map names"),
    ({"anyOf": None}, "/anyOf", "non-empty list"),
    ({"type": "object", "minProperties": None}, "/minProperties", "non-negative integer"),
    ({"type": "string", "minLength": 5, "maxLength": None}, "/maxLength", "non-negative integer"),
    ({"type": "string", "format": []}, "/format", "enforced formats"),
]


def _nested(depth: int) -> Any:
    schema: Any = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


@pytest.mark.parametrize(("schema", "pointer", "words"), REFUSED)
def test_refused_with_the_pointer_of_the_bad_part(schema: Any, pointer: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        schema_check.check(schema, param="response_format.json_schema.schema")
    assert info.value.param == f"response_format.json_schema.schema#{pointer}"
    assert words in info.value.message
    assert info.value.status == 400


def test_absurd_nesting_is_refused_without_recursion_errors() -> None:
    with pytest.raises(InvalidRequest, match="nested more than"):
        schema_check.check(_nested(5000), param="p")


def test_recursion_is_refused_where_the_engine_lacks_it() -> None:
    tree = {
        "$defs": {"T": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/T"}}}}}
    }
    schema_check.check({**tree, "$ref": "#/$defs/T"}, param="p", profile="gbnf")
    rooted = {**tree, "type": "object", "properties": {"root": {"$ref": "#/$defs/T"}}}
    with pytest.raises(InvalidRequest, match="recursive"):
        schema_check.check(rooted, param="p", profile="outlines")


class Address(BaseModel):
    street: str
    city: str = Field(max_length=40)
    zip: str = Field(pattern=r"^\d{5}$")


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    score: float = Field(ge=0, le=1)
    home: Address
    others: list[Address] = []
    nickname: str | None = None


class Node(BaseModel):
    value: int
    children: list[Node] = []


ACCEPTED = [
    Person.model_json_schema(),
    Node.model_json_schema(),
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}, "id": {"format": "uuid"}}},
    {"type": "object", "additionalProperties": {"type": "integer", "minimum": -5, "maximum": 1000}},
    {
        "type": "array",
        "prefixItems": [{"type": "boolean"}, {"type": "null"}],
        "items": {"type": "number"},
        "maxItems": 4,
    },
    {"type": "object", "properties": {'odd key " \\ /': {"const": {"k": [1, "two"]}}, "e": {"enum": ["a", 1, None]}}},
    {"type": "string", "pattern": "^[A-Z]{2,3}-\\d+(\\.\\d+)?$|^none$"},
    {"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"type": "object", "properties": {"a": {"type": "string"}}}}},
    True,
    {},
]


@pytest.mark.parametrize("schema", ACCEPTED)
@pytest.mark.parametrize("strict", [False, True])
def test_accepted_schemas_compile_in_llama_cpp(schema: Any, strict: bool) -> None:
    checked = schema_check.check(schema, param="p", strict=strict)
    assert compiles(to_gbnf(checked))


def test_json_object_grammar_compiles() -> None:
    assert compiles(json_object_gbnf())
