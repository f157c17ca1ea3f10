"""Set-up shared by the guard's fixture-driven tests (`test_guard_indirect2.py`, `test_guard_tool_results.py`):
a fixture file of payloads and carriers (texts with a `{payload}` slot and the escaping the slot needs), what
the rules find, and the rates printed when a test file is run as a script."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from owstack.security.guard import scan_text
from owstack.security.guard.types import SEVERITY_RANK

FIXTURES = Path(__file__).parent / "fixtures"


def escape(payload: str, how: str) -> str:
    """`payload` written as the carrier's slot needs it: a JSON string, a CSV field, an iCalendar value, one
    line, Python comment lines; anything else as it is."""
    if how == "json":
        return json.dumps(payload, ensure_ascii=False)
    if how == "csv":
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow([payload])
        return out.getvalue()[1:-1]  # the carrier has the quotes
    if how == "ics":
        return payload.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    if how == "line":
        return " ".join(payload.split())
    if how == "comment":
        return "\n".join("    # " + line for line in payload.split("\n"))
    return payload


class Fixture:
    """One fixture file (`fixtures/<name>`), read once."""

    def __init__(self, name: str) -> None:
        self.path = FIXTURES / name

    @cached_property
    def data(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        return loaded

    @property
    def carriers(self) -> list[str]:
        return list(self.data["carriers"])

    def embed(self, carrier: str, payload: str) -> str:
        spec = self.data["carriers"][carrier]
        return str(spec["text"]).replace("{payload}", escape(payload, spec["escape"]))


def rule_findings(text: str) -> list[str]:
    """Rules (stage one) at medium or above, the classifier left out."""
    return [
        f"{f.rule}:{f.excerpt}"
        for f in scan_text(text, source="tool")
        if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"] and f.rule != "OWS-GRD-100"
    ]


def print_rates(sets: Iterable[tuple[str, str, list[tuple[str, str]]]], verbose: bool = False) -> None:
    """Flagged (rules and classifier) and rules-alone rates of (label, part, cases): part `all` is counted as
    `label:*` and per kind (an id's text before its first `-`), any other part as `label:part`. `verbose`
    prints the misses and false positives of the `all` parts."""
    groups: dict[str, list[int]] = {}
    for label, part, cases in sets:
        for name, text in cases:
            found = [f for f in scan_text(text, source="tool") if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"]]
            rules = any(f.rule != "OWS-GRD-100" for f in found)
            if verbose and (rules != (label == "attack")) and part == "all":
                print("MISS" if label == "attack" else "FP  ", name, [f.rule for f in found])
            kind = name.split("-")[0]
            keys = {f"{label}:{part}"} if part != "all" else {f"{label}:*", f"{label}:{kind}"}
            for key in sorted(keys):
                g = groups.setdefault(key, [0, 0, 0])
                g[0] += int(bool(found))
                g[1] += int(rules)
                g[2] += 1
    print(f"{'group':28} {'n':>4} {'flagged':>12} {'rules alone':>12}")
    for key, (hits, rules, n) in sorted(groups.items()):
        print(f"{key:28} {n:>4} {hits:>5} {hits / n:>6.1%} {rules:>5} {rules / n:>6.1%}")
