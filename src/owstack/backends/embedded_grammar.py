"""The grammar that constrains one embedded-engine job, built from checked schemas and cached.

- `response_format` json_schema: the schema's grammar; json_object: any JSON object.
- a forced tool call (`tool_choice` "required" or a named function): one call in the Hermes form the
  engine prompts for, `<tool_call>{"name": "f", "arguments": {...}}</tool_call>`, the arguments under the
  function's parameters schema, so the tool-call reader streams it like any other call;
- `response_format` with tools on "auto": either the formatted answer or one tool call.

Schemas are checked (`schema_check`, profile "gbnf") before anything is converted; the finished text is
cached by the request's own bytes, so an agent that sends the same schema every turn pays once.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

from owstack.backends import structured
from owstack.backends.gbnf import Converter, Unsupported
from owstack.backends.gbnf_rules import GrammarTooLarge, Rules, literal
from owstack.errors import InvalidRequest

_OPEN = "<tool_call>\n"
_CLOSE = "\n</tool_call>"


def job_grammar(
    fmt: structured.OutputFormat | None,
    forced: list[structured.Function],
    auto: list[structured.Function],
) -> str | None:
    """GBNF for the job, or None when the output is free. Raises InvalidRequest naming the bad part."""
    if fmt is None and not forced:
        return None
    spec = {
        "format": [fmt.kind, fmt.schema, fmt.strict] if fmt else None,
        "forced": [[f.name, f.parameters, f.strict, f.index] for f in forced],
        "auto": [[f.name, f.parameters, f.strict, f.index] for f in auto] if fmt and not forced else [],
    }
    try:
        key = orjson.dumps(spec)
    except TypeError as exc:
        raise InvalidRequest(f"the output constraint holds a value that is not plain JSON: {exc}") from None
    return _cached(key)


@lru_cache(maxsize=64)
def _cached(key: bytes) -> str:
    spec = orjson.loads(key)
    fmt = structured.OutputFormat(spec["format"][0], spec["format"][1], spec["format"][2]) if spec["format"] else None
    forced = [structured.Function(n, "", p, s, i) for n, p, s, i in spec["forced"]]
    auto = [structured.Function(n, "", p, s, i) for n, p, s, i in spec["auto"]]
    rules = Rules()
    try:
        if forced:
            return rules.render(_call_block(forced, rules))
        assert fmt is not None
        answer = _format(fmt, rules)
        if auto:
            answer = f"( {answer} | {_call_block(auto, rules)} )"
        return rules.render(answer)
    except (Unsupported, GrammarTooLarge, ValueError) as exc:
        raise InvalidRequest(
            f"the output constraint cannot be enforced by the embedded engine: {exc}", code="invalid_schema"
        ) from None


def _format(fmt: structured.OutputFormat, rules: Rules) -> str:
    checked = structured.check_format(fmt, "gbnf")
    if checked is None:
        return rules.builtin("json-object")
    return Converter(checked, rules).visit(checked.root)


def _call_block(functions: list[structured.Function], rules: Rules) -> str:
    calls = []
    for fn, checked in zip(functions, structured.check_tools(functions, "gbnf"), strict=True):
        head = literal('{"name": ' + orjson.dumps(fn.name).decode() + ', "arguments": ')
        calls.append(f'{head} {Converter(checked, rules).visit(checked.root)} "}}"')
    return f"{literal(_OPEN)} ( {' | '.join(calls)} ) {literal(_CLOSE)}"
