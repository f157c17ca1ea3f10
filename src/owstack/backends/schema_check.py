"""JSON schemas checked before anything compiles them: a 400 naming the part, or a schema safe to compile.

Every schema that will constrain decoding (`response_format`, a forced tool's parameters) passes through
`check` first, on every engine. It refuses, with the JSON pointer of the part:

- what is not a schema: a `type` outside JSON Schema's seven, a keyword with a value of the wrong kind,
  bounds in the wrong order, an empty `enum`/`anyOf`;
- what cannot be resolved: a remote `$ref` (nothing is ever fetched), a `$ref` that points nowhere, anchors;
- what is too big to compile safely: nesting deeper than `MAX_DEPTH`, more than `MAX_NODES` parts,
  repetition bounds above the grammar engine's limit, patterns the grammar engine lacks (back-references,
  lookaround; see `regex_gbnf`), a `$ref` cycle that never nests (left recursion), a schema with no
  finite instance;
- what constrains in a way no supported engine enforces (`not`, `if`/`then`/`else`, `uniqueItems`,
  `patternProperties`, ...): a 400, never a silent ignore.

Keywords that only annotate (`title`, `description`, `default`, ...) or only widen the accepted set
(`nullable`), and keywords unknown to JSON Schema, are ignored: a grammar that leaves them out still only
produces valid instances. What each engine can enforce beyond the common set is a `Profile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from owstack.backends import regex_gbnf
from owstack.backends.gbnf_rules import MAX_REPEAT
from owstack.errors import InvalidRequest
from owstack.types import JSON

MAX_DEPTH = 48
MAX_NODES = 5000
TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
FORMATS = frozenset({"date", "time", "date-time", "uuid", "email", "ipv4", "uri"})
#: (shortest, longest) strings the grammar writes for a format (uri: its length follows maxLength down to 20)
_FORMAT_LENGTHS = {
    "date": (10, 10),
    "time": (9, 21),
    "date-time": (20, 32),
    "uuid": (36, 36),
    "ipv4": (7, 15),
    "email": (5, 248),
    "uri": (3, 20),
}
_MAPS = ("properties", "$defs", "definitions")
_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_ONES = ("additionalProperties", "additionalItems")
_REFUSED = {
    "not": "`not`",
    "if": "`if`/`then`/`else`",
    "then": "`if`/`then`/`else`",
    "else": "`if`/`then`/`else`",
    "contains": "`contains`",
    "minContains": "`minContains`",
    "maxContains": "`maxContains`",
    "patternProperties": "`patternProperties`",
    "propertyNames": "`propertyNames`",
    "dependentRequired": "`dependentRequired`",
    "dependentSchemas": "`dependentSchemas`",
    "dependencies": "`dependencies`",
    "unevaluatedProperties": "`unevaluatedProperties`",
    "unevaluatedItems": "`unevaluatedItems`",
    "$dynamicRef": "`$dynamicRef`",
    "$recursiveRef": "`$recursiveRef`",
    "contentSchema": "`contentSchema`",
}
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


@dataclass(frozen=True, slots=True)
class Profile:
    """What an engine's structured-output machinery enforces beyond the common set."""

    name: str
    #: bounds on non-integer numbers; False: only integer-valued inclusive bounds
    number_bounds: bool = False
    recursion: bool = True
    #: the root must declare `properties` (TGI refuses a schema without them)
    root_properties: bool = False


PROFILES = {
    # the embedded engine and the llama.cpp-based servers: llama.cpp GBNF
    "gbnf": Profile("gbnf"),
    # vLLM and SGLang: xgrammar (or guidance) by default
    "xgrammar": Profile("xgrammar", number_bounds=True),
    # TGI: outlines-core turns the schema into one regular expression
    "outlines": Profile("outlines", number_bounds=True, recursion=False, root_properties=True),
}


@dataclass(frozen=True)
class Checked:
    """A schema that compiles safely; `target` resolves its local `$ref`s."""

    root: Any
    strict: bool
    refs: dict[str, Any] = field(default_factory=dict)

    def target(self, ref: str) -> Any:
        return self.refs[ref]


class _Refused(Exception):
    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message


def check(schema: Any, *, param: str, profile: str = "gbnf", strict: bool = False) -> Checked:
    """Validate `schema` for `profile`; raises InvalidRequest with `param` = `{param}#{pointer}`."""
    try:
        _limits(schema)
        refs = _walk(schema, PROFILES[profile])
        if PROFILES[profile].root_properties and not (isinstance(schema, dict) and "properties" in schema):
            raise _Refused("", f"the {profile} engine needs the root schema to declare `properties`")
        _cycles(schema, refs, PROFILES[profile], strict)
    except _Refused as exc:
        where = exc.pointer or "/"
        raise InvalidRequest(
            f"{param}: the schema at {where} {exc.message}", param=f"{param}#{exc.pointer}", code="invalid_schema"
        ) from None
    return Checked(schema, strict, refs)


def _limits(schema: Any) -> None:
    """Depth and size of the JSON value itself, iteratively (nothing recursive runs before this)."""
    stack: list[tuple[Any, str, int]] = [(schema, "", 0)]
    nodes = 0
    while stack:
        value, pointer, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES * 4:
            raise _Refused("", f"has more than {MAX_NODES * 4} values")
        if depth > MAX_DEPTH * 2:
            raise _Refused(pointer, f"is nested more than {MAX_DEPTH * 2} levels deep")
        if isinstance(value, dict):
            stack.extend((v, f"{pointer}/{_escape(str(k))}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{pointer}/{i}", depth + 1) for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise _Refused(pointer, "holds a number that is not finite")
        elif isinstance(value, int) and not -(2**63) <= value < 2**64:
            raise _Refused(pointer, "holds an integer beyond 64 bits")


def _walk(root: Any, profile: Profile) -> dict[str, Any]:
    """Check every subschema; return the `$ref` targets by reference string."""
    refs: dict[str, Any] = {}
    stack: list[tuple[Any, str, int]] = [(root, "", 0)]
    count = 0
    while stack:
        node, pointer, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise _Refused("", f"has more than {MAX_NODES} subschemas")
        if depth > MAX_DEPTH:
            raise _Refused(pointer, f"is nested more than {MAX_DEPTH} subschemas deep")
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise _Refused(pointer, "is not a schema (an object or a boolean)")
        children = _children(node, pointer)  # first: it checks that the maps and lists are maps and lists
        _keywords(node, pointer, profile)
        ref = node.get("$ref")
        if ref is not None:
            refs[ref] = _resolve(root, ref, pointer)
        for child, where in children:
            stack.append((child, where, depth + 1))
    return refs


def _children(node: JSON, pointer: str) -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []
    for key in _MAPS:
        if key not in node:
            continue
        value = node[key]
        if not isinstance(value, dict):
            raise _Refused(f"{pointer}/{key}", "must map names to schemas")
        out += [(v, f"{pointer}/{key}/{_escape(str(k))}") for k, v in value.items()]
    for key in _LISTS:
        if key not in node:
            continue
        value = node[key]
        if not isinstance(value, list) or (not value and key != "prefixItems"):
            raise _Refused(f"{pointer}/{key}", "must be a non-empty list of schemas")
        out += [(v, f"{pointer}/{key}/{i}") for i, v in enumerate(value)]
    items = node.get("items")
    if isinstance(items, list):
        out += [(v, f"{pointer}/items/{i}") for i, v in enumerate(items)]
    elif items is not None:
        out.append((items, f"{pointer}/items"))
    out += [(node[key], f"{pointer}/{key}") for key in _ONES if key in node]
    return out


def _keywords(node: JSON, pointer: str, profile: Profile) -> None:
    for key, label in _REFUSED.items():
        if key in node:
            raise _Refused(f"{pointer}/{key}", f"uses {label}, which no grammar engine owstack drives can enforce")
    kind = node.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or any(not isinstance(k, str) or k not in TYPES for k in kinds) or len(set(kinds)) < len(kinds):
            raise _Refused(f"{pointer}/type", f"has an invalid `type` {kind!r} (one of {', '.join(sorted(TYPES))})")
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise _Refused(f"{pointer}/enum", "needs `enum` to be a non-empty list")
    if "required" in node and (
        not isinstance(node["required"], list) or not all(isinstance(r, str) for r in node["required"])
    ):
        raise _Refused(f"{pointer}/required", "needs `required` to be a list of property names")
    _counts(node, pointer)
    _numbers(node, pointer, profile)
    _strings(node, pointer)
    if node.get("uniqueItems") is True and node.get("maxItems") not in (0, 1):
        raise _Refused(f"{pointer}/uniqueItems", "uses `uniqueItems`, which a grammar cannot enforce")
    if "multipleOf" in node and not (node["multipleOf"] == 1 and node.get("type") == "integer"):
        raise _Refused(f"{pointer}/multipleOf", "uses `multipleOf`, which a grammar cannot enforce")
    ref = node.get("$ref")
    if ref is not None and any(k in node for k in ("type", "properties", "items", "enum", "const", "anyOf")):
        raise _Refused(f"{pointer}/$ref", "combines `$ref` with constraints beside it; move them into the target")
    combined = [k for k in ("anyOf", "oneOf", "allOf") if k in node]
    if len(combined) > 1 or (combined and combined[0] != "allOf" and _constrains(node)):
        raise _Refused(f"{pointer}/{combined[0]}", "combines alternatives with other constraints beside them")


def _constrains(node: JSON) -> bool:
    keys = ("properties", "items", "prefixItems", "enum", "const", "pattern", "format", *_COUNTS, *_BOUNDS)
    return any(k in node for k in keys)


def _counts(node: JSON, pointer: str) -> None:
    for key in _COUNTS:
        if key not in node:
            continue
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Refused(f"{pointer}/{key}", f"needs `{key}` to be a non-negative integer")
        if value > MAX_REPEAT and key not in ("minProperties", "maxProperties"):
            raise _Refused(f"{pointer}/{key}", f"has {key} {value}; the grammar engine enforces at most {MAX_REPEAT}")
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems"), ("minProperties", "maxProperties")):
        if low in node and high in node and node[low] > node[high]:
            raise _Refused(f"{pointer}/{low}", f"has {low} above {high}: nothing can match")
    required = len(node.get("required") or ())
    if node.get("minProperties", 0) > required:
        raise _Refused(f"{pointer}/minProperties", "needs more properties than it requires; list them in `required`")
    declared = len(node.get("properties") or {})
    if "maxProperties" in node and (node["maxProperties"] < declared or node.get("additionalProperties", False)):
        raise _Refused(f"{pointer}/maxProperties", "uses `maxProperties` below what the object may hold")


def _numbers(node: JSON, pointer: str, profile: Profile) -> None:
    for key in _BOUNDS:
        value = node.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Refused(f"{pointer}/{key}", f"needs `{key}` to be a number")
        kinds = node.get("type")
        integer = kinds == "integer"
        if not integer and not profile.number_bounds and (not float(value).is_integer() or key.startswith("excl")):
            raise _Refused(
                f"{pointer}/{key}",
                f"has {key} {value} on a non-integer number; the {profile.name} engine enforces only "
                "whole-number inclusive bounds on numbers (use minimum/maximum, or type integer)",
            )
        if abs(value) > 1e15:
            raise _Refused(f"{pointer}/{key}", f"has {key} {value}, beyond the range a grammar enforces (1e15)")
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        raise _Refused(f"{pointer}/minimum", "has its minimum above its maximum: nothing can match")


def _strings(node: JSON, pointer: str) -> None:
    pattern = node.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise _Refused(f"{pointer}/pattern", "needs `pattern` to be a string")
        try:
            regex_gbnf.parse(pattern)
        except regex_gbnf.PatternError as exc:
            raise _Refused(f"{pointer}/pattern", f"has a pattern that cannot be enforced: {exc}") from None
        if any(k in node for k in ("minLength", "maxLength", "format")):
            raise _Refused(f"{pointer}/pattern", "combines `pattern` with a length or format; put them in the pattern")
    fmt = node.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in FORMATS):
        raise _Refused(f"{pointer}/format", f"has format {fmt!r}; enforced formats are {', '.join(sorted(FORMATS))}")
    if fmt is not None and any(k in node for k in ("minLength", "maxLength")):
        shortest, longest = _FORMAT_LENGTHS[fmt]
        if node.get("minLength", 0) > shortest or node.get("maxLength", MAX_REPEAT) < longest:
            raise _Refused(f"{pointer}/format", f"combines format {fmt} with a length the grammar cannot enforce")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _resolve(root: Any, ref: Any, pointer: str) -> Any:
    where = f"{pointer}/$ref"
    if not isinstance(ref, str):
        raise _Refused(where, "needs `$ref` to be a string")
    if not ref.startswith("#"):
        raise _Refused(where, f"refers to {ref!r}: only local references (#/...) are resolved, nothing is fetched")
    if ref != "#" and not ref.startswith("#/"):
        raise _Refused(where, f"refers to the anchor {ref!r}; use a JSON pointer such as #/$defs/Name")
    target = root
    for raw in ref[2:].split("/") if ref != "#" else ():
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise _Refused(where, f"refers to {ref!r}, which does not exist in this schema")
    if not isinstance(target, dict | bool):
        raise _Refused(where, f"refers to {ref!r}, which is not a schema")
    return target


def _cycles(root: Any, refs: dict[str, Any], profile: Profile, strict: bool) -> None:
    """Refuse `$ref` cycles that never nest, recursion where the engine lacks it, and schemas with no instance."""
    # references reachable without entering an object or array: a cycle among them is left recursion
    for ref, target in refs.items():
        seen = {ref}
        frontier = [target]
        while frontier:
            for nxt in _heads(frontier.pop()):
                if nxt == ref:
                    raise _Refused("", f"has a $ref cycle through {ref!r} that never nests inside an object or array")
                if nxt not in seen and nxt in refs:
                    seen.add(nxt)
                    frontier.append(refs[nxt])
    recursive = [ref for ref in refs if _reaches(refs, ref)]
    if recursive and not profile.recursion:
        raise _Refused("", f"is recursive through {recursive[0]!r}; the {profile.name} engine cannot enforce that")
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for ref, target in refs.items():
            if ref not in productive and _finite(target, productive, strict):
                productive.add(ref)
                changed = True
    if not _finite(root, productive, strict):
        raise _Refused("", "has no finite instance (a required property or item that recurses forever)")


def _heads(node: Any) -> list[str]:
    if not isinstance(node, dict):
        return []
    out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key) or ():
            out += _heads(sub)
    return out


def _reaches(refs: dict[str, Any], start: str) -> bool:
    seen: set[str] = set()
    frontier = [refs[start]]
    while frontier:
        node = frontier.pop()
        for ref in _all_refs(node):
            if ref == start:
                return True
            if ref not in seen and ref in refs:
                seen.add(ref)
                frontier.append(refs[ref])
    return False


def _all_refs(node: Any) -> list[str]:
    out: list[str] = []
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("$ref"), str):
                out.append(value["$ref"])
            stack.extend(v for k, v in value.items() if k not in ("$defs", "definitions", "enum", "const"))
        elif isinstance(value, list):
            stack.extend(value)
    return out


def _finite(node: Any, productive: set[str], strict: bool) -> bool:
    """Whether a finite instance exists, given which `$ref` targets are known to have one."""
    if isinstance(node, bool):
        return node
    if "$ref" in node:
        return node["$ref"] in productive
    if "const" in node or "enum" in node:
        return True
    for key in ("anyOf", "oneOf"):
        if key in node:
            return any(_finite(sub, productive, strict) for sub in node[key])
    if "allOf" in node and not all(_finite(sub, productive, strict) for sub in node["allOf"]):
        return False
    props = node.get("properties") or {}
    required = list(props) if strict else node.get("required") or ()
    if any(name in props and not _finite(props[name], productive, strict) for name in required):
        return False
    prefix = node.get("prefixItems") or (node.get("items") if isinstance(node.get("items"), list) else [])
    if not all(_finite(sub, productive, strict) for sub in prefix):
        return False
    items = node.get("items")
    return not (
        isinstance(items, dict | bool)
        and node.get("minItems", 0) > len(prefix)
        and not _finite(items, productive, strict)
    )
