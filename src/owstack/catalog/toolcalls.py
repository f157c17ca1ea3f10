"""Tool-call markup formats per model family, read from `catalog/data/tool_calls.yaml`.

tool_call_format("hermes")      -> ToolCallFormat
card_tool_call_format(card)     -> the format a catalog model writes, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from owstack.catalog import load_data
from owstack.catalog._schema import RawToolCallFormat, validate_entries
from owstack.errors import ConfigError

Body = Literal["json", "xml_function", "mistral", "json_list"]


@dataclass(frozen=True, slots=True)
class ToolCallFormat:
    name: str
    start: str
    end: str | None
    body: Body
    leading: str | None = None


@cache
def formats() -> dict[str, ToolCallFormat]:
    raw = validate_entries(dict(load_data("tool_calls")["formats"]), RawToolCallFormat, "tool_calls.yaml")
    return {name: ToolCallFormat(name, r.start, r.end, r.body, r.leading) for name, r in raw.items()}


def tool_call_format(name: str) -> ToolCallFormat:
    known = formats()
    if name not in known:
        raise ConfigError(f"tool_call_format: unknown format {name!r}; known formats: {', '.join(known)}")
    return known[name]


def card_tool_call_format(card: Any) -> ToolCallFormat | None:
    name = getattr(card, "tool_calls", None)
    return tool_call_format(name) if name else None
