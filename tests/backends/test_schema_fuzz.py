"""Fuzz: no tool schema or pattern crashes the process or escapes as anything but a 400.

Every schema hypothesis builds either is refused by `schema_check` (InvalidRequest, status 400) or becomes a
grammar that llama.cpp's real parser accepts, compiled here in process: a grammar it rejected would be a
NULL sampler (the segfault this guards against), and a crash would end the test run.
"""

from __future__ import annotations

from typing import Any

from grammar_engine import compiles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owstack.backends import embedded_grammar, regex_gbnf, structured
from owstack.backends.gbnf_rules import Rules
from owstack.errors import InvalidRequest

_names = st.sampled_from(["a", "b", "x y", 'q"uote', "Node", "$defs", "~1", "ü"])
_patterns = st.one_of(
    st.sampled_from(
        ["^(a)\\1$", "^[a-z]+$", "(?=x)", "\\d{2,4}", "^a|b$", "[]", "[^]", "a{3000}", "((a*)*)*", "\\p{L}"]
    ),
    st.text(alphabet="ab()[]{}|*+?.^$\\-,0123dws:=!<>", max_size=16),
)
_scalar = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array", "strin", 7]),
        "pattern": _patterns,
        "format": st.sampled_from(["date", "uuid", "email", "uri", "hostname", "date-time"]),
        "minLength": st.integers(-1, 2500),
        "maxLength": st.integers(-1, 2500),
        "minimum": st.one_of(st.integers(-(10**17), 10**17), st.floats(allow_nan=True)),
        "maximum": st.integers(-1000, 1000),
        "enum": st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
        "const": st.one_of(st.integers(), st.text(max_size=5)),
        "$ref": st.sampled_from(["#", "#/$defs/a", "#/$defs/Node", "#/properties/a", "http://x/y", "#/nope", 5]),
        "uniqueItems": st.booleans(),
        "not": st.just({}),
    },
)


def _schemas() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.one_of(_scalar, st.booleans()),
        lambda inner: st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["object", "array", ["string", "null"], []]),
                "properties": st.dictionaries(_names, inner, max_size=3),
                "required": st.lists(_names, max_size=3),
                "additionalProperties": st.one_of(st.booleans(), inner),
                "items": st.one_of(inner, st.lists(inner, max_size=2)),
                "prefixItems": st.lists(inner, max_size=2),
                "minItems": st.integers(0, 5),
                "maxItems": st.integers(0, 5),
                "anyOf": st.lists(inner, max_size=3),
                "oneOf": st.lists(inner, max_size=2),
                "allOf": st.lists(inner, max_size=2),
                "$defs": st.dictionaries(_names, inner, max_size=2),
                "$ref": st.sampled_from(["#", "#/$defs/a", "#/$defs/Node", "#/$defs/b"]),
            },
        ),
        max_leaves=12,
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parameters=_schemas(), strict=st.booleans(), forced=st.booleans())
def test_no_tool_schema_crashes_or_escapes_as_a_5xx(parameters: Any, strict: bool, forced: bool) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters, "strict": strict}}
    params: dict[str, Any] = {"tools": [tool], "tool_choice": "required" if forced else "auto"}
    if not forced:
        params["response_format"] = {"type": "json_schema", "json_schema": {"name": "o", "schema": parameters}}
    try:
        offered = structured.functions(params["tools"])
        grammar = embedded_grammar.job_grammar(
            structured.output_format(params),
            structured.forced_tools(params, offered),
            [] if forced else list(offered.values()),
        )
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    assert grammar is not None
    assert compiles(grammar), grammar


@settings(max_examples=400, deadline=None)
@given(pattern=_patterns)
def test_no_pattern_crashes_the_grammar_parser(pattern: str) -> None:
    try:
        rules = Rules()
        body = regex_gbnf.to_gbnf(pattern, rules)
    except ValueError:  # PatternError and the other refusals: a 400 on the request path (embedded_grammar)
        return
    assert compiles(rules.render(f'"\\"" {body} "\\""'))
