"""Prompt injections inside tool results (fixtures/guard_tool_results.yaml): an attacker controls one field of
what a tool returns (an issue body, a CRM note, a calendar description, an e-mail body, a search snippet, a
review, a transaction memo, a chat message, a file name, a commit message, a DNS TXT record, an error message,
a log field) and writes there a letter to "you, the AI", a forged end of the tool output or a role label, a
request to call another tool (send money or e-mail, delete or share files, post a message), an order to change
the answer to the user or to drop the user's task. Each attack is put into two tool results and must be found
by the rules (stage one) at medium or above; the hard benign twins (API documentation, error messages with
remediation steps, CI logs, help text, people asking people for things, TODO lists, recipes, release notes,
advisories describing injections) alone and in a tool result, and every tool result with benign field values,
must not be.

Run as a script for the rates (rules alone and with the classifier), `fresh`, `blind` and `blind2` included:
    PYTHONPATH=$PWD/src .venv/bin/python tests/security/test_guard_tool_results.py
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from owstack.security.guard import scan_text
from owstack.security.guard.types import SEVERITY_RANK

DATA = Path(__file__).parent / "fixtures" / "guard_tool_results.yaml"


@cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return loaded


def _escape(payload: str, how: str) -> str:
    if how == "json":
        return json.dumps(payload, ensure_ascii=False)
    if how == "line":
        return " ".join(payload.split())
    return payload


def _embed(carrier: str, payload: str) -> str:
    spec = _data()["carriers"][carrier]
    return str(spec["text"]).replace("{payload}", _escape(payload, spec["escape"]))


def _cases(key: str, spread: int, offset: int) -> list[tuple[str, str]]:
    names = list(_data()["carriers"])
    out = []
    for i, a in enumerate(_data().get(key) or []):
        text, shape = (a["text"], a["shape"]) if isinstance(a, dict) else (a, key.split("_")[0])
        for c in dict.fromkeys([names[(i + offset) % len(names)], names[(i * spread + 3 + offset) % len(names)]]):
            out.append((f"{shape}-{i}@{c}", _embed(c, text)))
    return out


def attacks(key: str = "attacks") -> list[tuple[str, str]]:
    """(id, text): every attack in two tool results chosen by its index."""
    return _cases(key, 5, 0 if key == "attacks" else 1)


def benign(key: str = "benign") -> list[tuple[str, str]]:
    """(id, text): the benign texts alone and in one tool result; with `benign`, every tool result with fillers."""
    names = list(_data()["carriers"])
    out = []
    for i, b in enumerate(_data().get(key) or []):
        text, kind = (b["text"], b["kind"]) if isinstance(b, dict) else (b, key.split("_")[0])
        out.append((f"{kind}-{i}", text))
        carrier = names[(i * 3 + 1) % len(names)]
        out.append((f"{kind}-{i}@{carrier}", _embed(carrier, text)))
    if key == "benign":
        for i, filler in enumerate(_data()["carrier_fillers"]):
            out.extend((f"filler-{i}@{c}", _embed(c, filler)) for c in names)
    return out


def rule_findings(text: str) -> list[str]:
    """Rules (stage one) at medium or above, the classifier left out."""
    return [
        f"{f.rule}:{f.excerpt}"
        for f in scan_text(text, source="tool")
        if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"] and f.rule != "OWS-GRD-100"
    ]


@pytest.mark.parametrize(("name", "text"), attacks(), ids=[n for n, _ in attacks()])
def test_injection_in_tool_result_is_found_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text), name


@pytest.mark.parametrize(("name", "text"), benign(), ids=[n for n, _ in benign()])
def test_benign_tool_result_is_not_flagged_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text) == [], name


def _rates(verbose: bool = False) -> None:
    groups: dict[str, list[int]] = {}
    sets = (
        ("attack", "all", attacks()),
        ("benign", "all", benign()),
        ("attack", "fresh", attacks("fresh_attacks")),
        ("benign", "fresh", benign("fresh_benign")),
        ("attack", "blind", attacks("blind_attacks")),
        ("benign", "blind", benign("blind_benign")),
        ("attack", "blind2", attacks("blind2_attacks")),
        ("benign", "blind2", benign("blind2_benign")),
    )
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


if __name__ == "__main__":
    import sys

    _rates("-v" in sys.argv)
