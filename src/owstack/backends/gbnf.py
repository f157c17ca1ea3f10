"""A checked JSON schema (`schema_check.Checked`) as a llama.cpp GBNF grammar.

Why owstack writes its own converter instead of calling llama-cpp-python's `json_schema_to_gbnf`: that
port names rules after user text (a `$defs` entry named like a built-in, or with a space, breaks a
recursive reference), resolves `$ref` against the wrong root once a schema is nested (the forced-tool
500), passes regex escapes it does not understand into the grammar (the back-reference crash), and has no
integer bounds. Here rule names are generated, every construct comes from `schema_check`'s accepted set,
and the text is built from `gbnf_rules`, which never writes an unescaped character.

Semantics: the grammar accepts a subset of the schema's instances (never more). Objects list their
properties in declaration order; `strict` (OpenAI's strict mode) makes every property required and
allows no other; otherwise `required` is honoured, and properties the schema does not declare are allowed
only when `additionalProperties` says so. Whitespace between tokens is bounded (see `gbnf_rules.BUILTINS`).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from owstack.backends import regex_gbnf
from owstack.backends.gbnf_numbers import int_range, number_range
from owstack.backends.gbnf_rules import Rules, literal
from owstack.backends.schema_check import Checked
from owstack.types import JSON

_HEX = "[0-9a-fA-F]"
_FORMATS = {
    "date": '[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] )',
    "time": '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? '
    '( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
    "uuid": " ".join([f"{_HEX}{{8}}", *(f'"-" {_HEX}{{{n}}}' for n in (4, 4, 4, 12))]),
    "ipv4": ' "." '.join(['( "25" [0-5] | "2" [0-4] [0-9] | "1" [0-9]{2} | [1-9]? [0-9] )'] * 4),
    # at most 64 + 1 + 3 x 61 = 248 characters, inside RFC 5321's 254
    "email": '[a-zA-Z0-9_%+-] [a-zA-Z0-9._%+-]{0,63} "@" [a-zA-Z0-9] [a-zA-Z0-9-]{0,59} '
    '( "." [a-zA-Z0-9] [a-zA-Z0-9-]{0,59} ){1,2}',
}
_URI_CHAR = (
    "[A-Za-z0-9\\x2D\\x2E\\x5F\\x7E\\x3A\\x2F\\x3F\\x23\\x5B\\x5D\\x40\\x21\\x24\\x26\\x27\\x28-\\x2C\\x3B\\x3D\\x25]"
)


class Unsupported(ValueError):
    """A construct the checker let through but the converter cannot express (a bug, reported as a 400)."""


def to_gbnf(checked: Checked) -> str:
    rules = Rules()
    root = Converter(checked, rules).visit(checked.root)
    return rules.render(root)


def json_object_gbnf() -> str:
    """`response_format: {"type": "json_object"}`: any JSON object."""
    rules = Rules()
    return rules.render(rules.builtin("json-object"))


class Converter:
    def __init__(self, checked: Checked, rules: Rules) -> None:
        self.checked = checked
        self.rules = rules
        self._refs: dict[str, str] = {}

    def visit(self, node: Any) -> str:
        if node is True or node == {}:
            return self.rules.builtin("json-value")
        if node is False:
            raise Unsupported("a `false` schema admits nothing")
        if "$ref" in node:
            return self._ref(node["$ref"])
        if "const" in node:
            return literal(orjson.dumps(node["const"]).decode())
        if "enum" in node:
            return "( " + " | ".join(literal(orjson.dumps(v).decode()) for v in node["enum"]) + " )"
        for key in ("anyOf", "oneOf"):
            if key in node:
                return "( " + " | ".join(self.visit(sub) for sub in node[key]) + " )"
        if "allOf" in node:
            return self.visit(self._merge(node))
        kind = node.get("type") or _infer(node)
        if isinstance(kind, list):
            return "( " + " | ".join(self.visit({**node, "type": k}) for k in kind) + " )"
        return self._typed(kind, node)

    def _typed(self, kind: str | None, node: JSON) -> str:
        if kind == "object":
            return self._object(node)
        if kind == "array":
            return self._array(node)
        if kind == "string":
            return self._string(node)
        if kind == "integer":
            return self._integer(node)
        if kind == "number":
            return self._number(node)
        if kind == "boolean":
            return '( "true" | "false" )'
        if kind == "null":
            return '"null"'
        return self.rules.builtin("json-value")

    def _ref(self, ref: str) -> str:
        name = self._refs.get(ref)
        if name is None:
            name = self._refs[ref] = self.rules.reserve()
            self.rules.define(name, self.visit(self.checked.target(ref)))
        return name

    def _merge(self, node: JSON) -> JSON:
        merged: JSON = {k: v for k, v in node.items() if k != "allOf"}
        for sub in node["allOf"]:
            while isinstance(sub, dict) and "$ref" in sub:
                sub = self.checked.target(sub["$ref"])
            if sub is True:
                continue
            if not isinstance(sub, dict) or "allOf" in sub or "anyOf" in sub or "oneOf" in sub:
                raise Unsupported("`allOf` members must be object schemas")
            for key, value in sub.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                elif key in merged and merged[key] != value and key not in ("title", "description"):
                    raise Unsupported(f"`allOf` members disagree on `{key}`")
                else:
                    merged[key] = value
        return merged

    # objects ---------------------------------------------------------------------------------------
    def _object(self, node: JSON) -> str:
        strict = self.checked.strict
        props: dict[str, Any] = dict(node.get("properties") or {})
        required = set(props) if strict else set(node.get("required") or ())
        for name in required - set(props):
            props[name] = True  # required but undeclared: any value
        extra = node.get("additionalProperties", False)
        rules = self.rules
        ws = rules.builtin("ws")
        pairs = [
            (name, rules.add(f'{literal(orjson.dumps(name).decode())} {ws} ":" {ws} {self.visit(sub)} {ws}'))
            for name, sub in props.items()
        ]
        after = first = ""
        if extra is not False and not strict:
            key = rules.builtin("json-string")
            pair = rules.add(f'{key} {ws} ":" {ws} {self.visit(extra)} {ws}')
            after = f'( "," {ws} {pair} )*'
            first = f'( {pair} ( "," {ws} {pair} )* )?'
        # after: the properties from here on once one was written (each needs a comma); first: none written yet
        for name, pair in reversed(pairs):
            a_ref = rules.ref(after) if after else ""
            b_ref = rules.ref(first) if first else ""
            if name in required:
                after, first = f'"," {ws} {pair} {a_ref}', f"{pair} {a_ref}"
            else:
                after = f'( "," {ws} {pair} )? {a_ref}'
                first = f"( {pair} {a_ref} | {b_ref} )" if b_ref else f"( {pair} {a_ref} )?"
        return f'"{{" {ws} {first} "}}"'

    # arrays ----------------------------------------------------------------------------------------
    def _array(self, node: JSON) -> str:
        rules = self.rules
        ws = rules.builtin("ws")
        items = node.get("items", True)
        prefix = node.get("prefixItems") or []
        if isinstance(items, list):
            prefix, items = items, node.get("additionalItems", True)
        lo, hi = node.get("minItems", 0), node.get("maxItems")
        prefix = prefix[: hi if hi is not None else len(prefix)]
        parts = [f"{self.visit(sub)} {ws}" for sub in prefix]
        body = ' "," '.join(f"{ws} {p}" if i else p for i, p in enumerate(parts))
        rest_lo = max(lo - len(prefix), 0)
        rest_hi = None if hi is None else hi - len(prefix)
        if items is False or rest_hi == 0:
            if rest_lo > 0:
                raise Unsupported("`minItems` asks for more items than the schema allows")
            return f'"[" {ws} {body} "]"'
        item = rules.add(f"{self.visit(items)} {ws}")
        if prefix:
            rest = rules.repeat(rules.add(f'"," {ws} {item}'), rest_lo, rest_hi)
        else:
            rest = rules.repeat(item, rest_lo, rest_hi, sep=f'"," {ws}')
        return f'"[" {ws} {body} {rest} "]"'

    # scalars ---------------------------------------------------------------------------------------
    def _string(self, node: JSON) -> str:
        rules = self.rules
        if "pattern" in node:
            return f'"\\"" {regex_gbnf.to_gbnf(node["pattern"], rules)} "\\""'
        fmt = node.get("format")
        if fmt == "date-time":
            body = f'{rules.add(_FORMATS["date"])} "T" {rules.add(_FORMATS["time"])}'
        elif fmt == "uri":
            room = min(node.get("maxLength", 2000) - 17, 2000)
            body = f'[a-zA-Z] [a-zA-Z0-9+.-]{{0,15}} ":" {rules.add(_URI_CHAR)}{{1,{room}}}'
        elif fmt is not None:
            body = rules.add(_FORMATS[fmt])
        elif "minLength" in node or "maxLength" in node:
            char = rules.builtin("json-char")
            body = rules.repeat(char, node.get("minLength", 0), node.get("maxLength"))
        else:
            return rules.builtin("json-string")
        return f'"\\"" {body} "\\""'

    def _integer(self, node: JSON) -> str:
        lo, hi = _bounds(node, integer=True)
        if lo is None and hi is None:
            return self.rules.builtin("json-int")
        return int_range(lo, hi)

    def _number(self, node: JSON) -> str:
        lo, hi = _bounds(node, integer=False)
        if lo is None and hi is None:
            return self.rules.builtin("json-number")
        return number_range(lo, hi, self.rules)


def _bounds(node: JSON, integer: bool) -> tuple[int | None, int | None]:
    lo: int | None = None
    hi: int | None = None
    if "minimum" in node:
        lo = math.ceil(node["minimum"])
    if "exclusiveMinimum" in node:
        value = node["exclusiveMinimum"]
        lo = max(lo if lo is not None else -(10**16), math.floor(value) + 1 if integer else math.ceil(value))
    if "maximum" in node:
        hi = math.floor(node["maximum"])
    if "exclusiveMaximum" in node:
        value = node["exclusiveMaximum"]
        hi = min(hi if hi is not None else 10**16, math.ceil(value) - 1 if integer else math.floor(value))
    if lo is not None and hi is not None and lo > hi:
        raise Unsupported("the bounds leave no number")
    return lo, hi


def _infer(node: JSON) -> str | None:
    if any(k in node for k in ("properties", "required", "additionalProperties")):
        return "object"
    if any(k in node for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in node for k in ("pattern", "format", "minLength", "maxLength")):
        return "string"
    if any(k in node for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return None
