"""Indirect injections planted in documents and tool outputs (fixtures/guard_indirect2.yaml): exfiltration
phrased as rendering an image or link with a slot for the data, the same in other languages, words run
together, text addressed to the AI that reads the document, forged role markers and document ends, claims
that "the user has asked you to", hidden markup, and registry records or footers telling the reader what to
do to the user. Each is put into realistic carriers (e-mail, web page, README, CSV and JSON tool output,
WHOIS-like record, calendar invite, code comment, search results) and must be found by the rules (stage
one) at medium or above; the hard benign twins (text about prompt injection, manuals, legal footers, terms
of use, AI product text, images and placeholders, code identifiers, markup, other languages) and the
carriers with benign sentences must not be.

Run as a script for the rates (rules alone and with the classifier):
    PYTHONPATH=$PWD/src .venv/bin/python tests/security/test_guard_indirect2.py
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from owstack.security.guard import scan_text
from owstack.security.guard.types import SEVERITY_RANK

DATA = Path(__file__).parent / "fixtures" / "guard_indirect2.yaml"


@cache
def _data() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    return loaded


def _escape(payload: str, how: str) -> str:
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


def _embed(carrier: str, payload: str) -> str:
    spec = _data()["carriers"][carrier]
    return str(spec["text"]).replace("{payload}", _escape(payload, spec["escape"]))


def attacks() -> list[tuple[str, str]]:
    """(id, text): every attack in its carriers (its own list, else two chosen by its index)."""
    names = list(_data()["carriers"])
    out = []
    for i, a in enumerate(_data()["attacks"]):
        chosen = a.get("carriers") or [names[i % len(names)], names[(i * 5 + 3) % len(names)]]
        out.extend((f"{a['shape']}-{i}@{c}", _embed(c, a["text"])) for c in dict.fromkeys(chosen))
    return out


def benign() -> list[tuple[str, str]]:
    """(id, text): the hard benign texts alone and in a carrier, and every carrier with benign fillers."""
    names = list(_data()["carriers"])
    out = []
    for i, b in enumerate(_data()["benign"]):
        out.append((f"{b['kind']}-{i}", b["text"]))
        carrier = names[i % len(names)]
        out.append((f"{b['kind']}-{i}@{carrier}", _embed(carrier, b["text"])))
    for i, filler in enumerate(_data()["carrier_fillers"]):
        out.extend((f"filler-{i}@{c}", _embed(c, filler)) for c in names)
    return out


def fresh(name: str = "fresh") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The texts written after the rules (`fresh`, then `blind`; measured, not asserted): attacks in two carriers
    each, benign alone and in one carrier."""
    names = list(_data()["carriers"])
    attacks_out, benign_out = [], []
    for i, text in enumerate(_data()[f"{name}_attacks"]):
        for c in dict.fromkeys([names[(i + 1) % len(names)], names[(i * 7 + 2) % len(names)]]):
            attacks_out.append((f"{name}-{i}@{c}", _embed(c, text)))
    for i, text in enumerate(_data()[f"{name}_benign"]):
        benign_out.append((f"{name}-{i}", text))
        benign_out.append((f"{name}-{i}@{names[i % len(names)]}", _embed(names[i % len(names)], text)))
    return attacks_out, benign_out


def rule_findings(text: str) -> list[str]:
    """Rules (stage one) at medium or above, the classifier left out."""
    return [
        f"{f.rule}:{f.excerpt}"
        for f in scan_text(text, source="tool")
        if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"] and f.rule != "OWS-GRD-100"
    ]


@pytest.mark.parametrize(("name", "text"), attacks(), ids=[n for n, _ in attacks()])
def test_planted_instruction_is_found_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text), name


@pytest.mark.parametrize(("name", "text"), benign(), ids=[n for n, _ in benign()])
def test_benign_twin_is_not_flagged_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text) == [], name


def _rates() -> None:
    groups: dict[str, list[int]] = {}
    fresh_attacks, fresh_benign = fresh()
    blind_attacks, blind_benign = fresh("blind")
    blind2_attacks, blind2_benign = fresh("blind2")
    sets = (
        ("attack", attacks()),
        ("benign", benign()),
        ("attack", fresh_attacks),
        ("benign", fresh_benign),
        ("attack", blind_attacks),
        ("benign", blind_benign),
        ("attack", blind2_attacks),
        ("benign", blind2_benign),
    )
    for label, cases in sets:
        for name, text in cases:
            found = [f for f in scan_text(text, source="tool") if SEVERITY_RANK[f.severity] >= SEVERITY_RANK["medium"]]
            rules = any(f.rule != "OWS-GRD-100" for f in found)
            kind = name.split("-")[0]
            keys = {f"{label}:{kind}"} if kind in ("fresh", "blind", "blind2") else {f"{label}:*", f"{label}:{kind}"}
            for key in sorted(keys):
                g = groups.setdefault(key, [0, 0, 0])
                g[0] += int(bool(found))
                g[1] += int(rules)
                g[2] += 1
    print(f"{'group':28} {'n':>4} {'flagged':>8} {'rules alone':>12}")
    for key, (hits, rules, n) in sorted(groups.items()):
        print(f"{key:28} {n:>4} {hits:>4} {hits / n:>5.1%} {rules:>4} {rules / n:>6.1%}")


if __name__ == "__main__":
    _rates()
