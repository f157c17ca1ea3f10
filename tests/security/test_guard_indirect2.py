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

import pytest
from _guard_cases import Fixture, print_rates, rule_findings

CASES = Fixture("guard_indirect2.yaml")


def attacks() -> list[tuple[str, str]]:
    """(id, text): every attack in its carriers (its own list, else two chosen by its index)."""
    names = CASES.carriers
    out = []
    for i, a in enumerate(CASES.data["attacks"]):
        chosen = a.get("carriers") or [names[i % len(names)], names[(i * 5 + 3) % len(names)]]
        out.extend((f"{a['shape']}-{i}@{c}", CASES.embed(c, a["text"])) for c in dict.fromkeys(chosen))
    return out


def benign() -> list[tuple[str, str]]:
    """(id, text): the hard benign texts alone and in a carrier, and every carrier with benign fillers."""
    names = CASES.carriers
    out = []
    for i, b in enumerate(CASES.data["benign"]):
        out.append((f"{b['kind']}-{i}", b["text"]))
        carrier = names[i % len(names)]
        out.append((f"{b['kind']}-{i}@{carrier}", CASES.embed(carrier, b["text"])))
    for i, filler in enumerate(CASES.data["carrier_fillers"]):
        out.extend((f"filler-{i}@{c}", CASES.embed(c, filler)) for c in names)
    return out


def fresh(name: str = "fresh") -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The texts written after the rules (`fresh`, then `blind`; measured, not asserted): attacks in two carriers
    each, benign alone and in one carrier."""
    names = CASES.carriers
    attacks_out, benign_out = [], []
    for i, text in enumerate(CASES.data[f"{name}_attacks"]):
        for c in dict.fromkeys([names[(i + 1) % len(names)], names[(i * 7 + 2) % len(names)]]):
            attacks_out.append((f"{name}-{i}@{c}", CASES.embed(c, text)))
    for i, text in enumerate(CASES.data[f"{name}_benign"]):
        benign_out.append((f"{name}-{i}", text))
        benign_out.append((f"{name}-{i}@{names[i % len(names)]}", CASES.embed(names[i % len(names)], text)))
    return attacks_out, benign_out


@pytest.mark.parametrize(("name", "text"), attacks(), ids=[n for n, _ in attacks()])
def test_planted_instruction_is_found_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text), name


@pytest.mark.parametrize(("name", "text"), benign(), ids=[n for n, _ in benign()])
def test_benign_twin_is_not_flagged_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text) == [], name


def _rates() -> None:
    sets = [("attack", "all", attacks()), ("benign", "all", benign())]
    for name in ("fresh", "blind", "blind2"):
        attacks_out, benign_out = fresh(name)
        sets += [("attack", name, attacks_out), ("benign", name, benign_out)]
    print_rates(sets)


if __name__ == "__main__":
    _rates()
