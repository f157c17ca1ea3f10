"""A request body -> a JSON object, within limits, validated against a protocol's schema.

Nesting is limited at parse time (`MAX_DEPTH`): a body nested a few hundred levels deep parses, but cannot be
serialised again (orjson stops at 255 levels) and would fail later, deep in the call path. It is refused here
with a 400, before anything else sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from owstack.errors import InvalidRequest

#: the deepest nesting of objects and arrays a request body may have (JSON schemas in tools included)
MAX_DEPTH = 64


def json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    if nests_too_deep(body, data):
        raise InvalidRequest(TOO_DEEP, code="too_deep")
    return data


#: what a body nested past `MAX_DEPTH` is told (on `/v1` and on `/mcp`)
TOO_DEEP = f"the request body nests objects and arrays more than {MAX_DEPTH} levels deep"


def nests_too_deep(body: bytes, data: Any) -> bool:
    """True when `data` (what `body` parsed to) nests objects and arrays past `MAX_DEPTH`. Fewer brackets than
    the limit cannot nest deeper than it: the common case costs two C-level counts."""
    return body.count(b"{") + body.count(b"[") > MAX_DEPTH and too_deep(data, MAX_DEPTH)


def too_deep(value: Any, limit: int) -> bool:
    """True when `value` nests dicts and lists more than `limit` levels deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


Tags = Mapping[str, frozenset[str]]


def validate(model: type[BaseModel], data: dict[str, Any], *, tags: Tags | None = None) -> None:
    """Validate against a pydantic schema; the first problem becomes a 400 naming its `param`."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        # Of the alternatives a union reports, the deepest location is the most specific one.
        errors = exc.errors(include_url=False)
        err = max(errors, key=lambda e: len(e["loc"]))
        param = param_of(err["loc"], tags or {})
        raise InvalidRequest(f"{param}: {err['msg']}" if param else err["msg"], param=param) from None


def param_of(loc: Sequence[int | str], tags: Tags) -> str:
    """A pydantic error location -> the `param` a client expects (`messages[0].content`).

    `tags` maps a discriminated list's field name to the discriminator values pydantic inserts after an
    index into it (`messages.0.user.content`): those are not part of the field path.
    """
    kept: list[int | str] = []
    tag_set: frozenset[str] = frozenset()
    for part in loc:
        if isinstance(part, str):
            if "[" in part or part in ("str", "int", "float", "bool", "none") or part.startswith("function-"):
                continue  # a union branch label
            if part in tag_set:
                tag_set = frozenset()
                continue
        listed = kept[-1] if isinstance(part, int) and kept else None
        tag_set = tags.get(listed, frozenset()) if isinstance(listed, str) else frozenset()
        kept.append(part)
    out = ""
    for part in kept:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
