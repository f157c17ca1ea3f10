"""Shared by the model-file tests: the findings of a scan by file, and whether a file fails the scan."""

from __future__ import annotations

from pathlib import Path

from owstack.security.model_scan import scan_models

FAILING = ("high", "critical")


def by_file(path: Path) -> dict[str, dict[str, str]]:
    """file -> rule -> highest severity"""
    ranks = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
    out: dict[str, dict[str, str]] = {}
    for f in scan_models(path):
        rules = out.setdefault(f.file, {})
        if ranks[f.severity] >= ranks[rules.get(f.rule, "info")]:
            rules[f.rule] = f.severity
    return out


def failing(rules: dict[str, str]) -> bool:
    return any(sev in FAILING for sev in rules.values())
