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

import pytest
from _guard_cases import Fixture, print_rates, rule_findings

CASES = Fixture("guard_tool_results.yaml")


def _cases(key: str, spread: int, offset: int) -> list[tuple[str, str]]:
    names = CASES.carriers
    out = []
    for i, a in enumerate(CASES.data.get(key) or []):
        text, shape = (a["text"], a["shape"]) if isinstance(a, dict) else (a, key.split("_")[0])
        for c in dict.fromkeys([names[(i + offset) % len(names)], names[(i * spread + 3 + offset) % len(names)]]):
            out.append((f"{shape}-{i}@{c}", CASES.embed(c, text)))
    return out


def attacks(key: str = "attacks") -> list[tuple[str, str]]:
    """(id, text): every attack in two tool results chosen by its index."""
    return _cases(key, 5, 0 if key == "attacks" else 1)


def benign(key: str = "benign") -> list[tuple[str, str]]:
    """(id, text): the benign texts alone and in one tool result; with `benign`, every tool result with fillers."""
    names = CASES.carriers
    out = []
    for i, b in enumerate(CASES.data.get(key) or []):
        text, kind = (b["text"], b["kind"]) if isinstance(b, dict) else (b, key.split("_")[0])
        out.append((f"{kind}-{i}", text))
        carrier = names[(i * 3 + 1) % len(names)]
        out.append((f"{kind}-{i}@{carrier}", CASES.embed(carrier, text)))
    if key == "benign":
        for i, filler in enumerate(CASES.data["carrier_fillers"]):
            out.extend((f"filler-{i}@{c}", CASES.embed(c, filler)) for c in names)
    return out


@pytest.mark.parametrize(("name", "text"), attacks(), ids=[n for n, _ in attacks()])
def test_injection_in_tool_result_is_found_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text), name


@pytest.mark.parametrize(("name", "text"), benign(), ids=[n for n, _ in benign()])
def test_benign_tool_result_is_not_flagged_by_the_rules(name: str, text: str) -> None:
    assert rule_findings(text) == [], name


def _rates(verbose: bool = False) -> None:
    sets = [("attack", "all", attacks()), ("benign", "all", benign())]
    for part in ("fresh", "blind", "blind2"):
        sets += [("attack", part, attacks(f"{part}_attacks")), ("benign", part, benign(f"{part}_benign"))]
    print_rates(sets, verbose)


if __name__ == "__main__":
    import sys

    _rates("-v" in sys.argv)
