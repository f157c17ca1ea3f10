"""Print scan findings as text, JSON (`{"findings": [...]}`) or SARIF 2.1.0, and decide the exit code."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from owstack.security.findings import RANK, SEVERITIES, Finding, advisory_url, at_least, rules

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
#: GitHub code scanning reads `security-severity` (0-10) to rank security results
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def failing(findings: Sequence[Finding], fail_on: str) -> list[Finding]:
    """The findings at or above `fail_on` (the exit code is 1 when this is non-empty)."""
    return [f for f in findings if f.severity != "info" and at_least(f.severity, fail_on)]


def summary(findings: Sequence[Finding]) -> dict[str, Any]:
    counts: Counter[str] = Counter(f.severity for f in findings)
    return {
        "total": len(findings),
        "files": len({f.file for f in findings}),
        "by_severity": {s: counts[s] for s in reversed(SEVERITIES) if counts[s]},
    }


def as_json(findings: Sequence[Finding], fail_on: str) -> dict[str, Any]:
    return {
        "findings": [f.as_dict() for f in findings],
        "summary": summary(findings),
        "fail_on": fail_on,
        "failed": bool(failing(findings, fail_on)),
    }


def as_text(findings: Sequence[Finding], fail_on: str) -> str:
    lines: list[str] = []
    for f in findings:
        lines.append(f"{f.file}:{f.line}: {f.severity} {f.rule} {f.title}")
        lines.append(f"  {f.message}")
        if f.executes:
            lines.append(f"  executes: {f.executes}")
        for key in ("sha256", "format"):
            if getattr(f, key, None):
                lines.append(f"  {key}: {getattr(f, key)}")
        if f.advisories:
            lines.append(f"  advisory: {', '.join(f.advisories)}")
        if f.severity != "info":
            lines.append(f"  fix: {f.fix}")
    s = summary(findings)
    if not findings:
        lines.append("no findings")
    else:
        counts = ", ".join(f"{n} {sev}" for sev, n in s["by_severity"].items())
        verdict = "fails" if failing(findings, fail_on) else "passes"
        lines.append(f"{s['total']} findings ({counts}) in {s['files']} files; {verdict} --fail-on {fail_on}")
    return "\n".join(lines)


def as_sarif(findings: Sequence[Finding], root: Path, version: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; rules carry their advisories, fix and a security-severity."""
    used = sorted({f.rule for f in findings})
    catalogue = rules()
    driver_rules = [_sarif_rule(catalogue[r]) for r in used]
    index = {r: i for i, r in enumerate(used)}
    base = root.resolve() if root.is_dir() else root.resolve().parent
    results = [_sarif_result(f, index[f.rule]) for f in findings]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "owstack",
                        "version": version,
                        "semanticVersion": version,
                        "informationUri": "https://github.com/owstack/owstack/blob/main/docs/security.md",
                        "rules": driver_rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": base.as_uri() + "/"}},
                "invocations": [{"executionSuccessful": True}],
                "results": results,
            }
        ],
    }


def _sarif_rule(rule: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rule.id,
        "name": "".join(w.capitalize() for w in rule.id.lower().split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {"text": rule.fix, "markdown": f"**Fix:** {rule.fix}"},
        "defaultConfiguration": {"level": _LEVEL[rule.severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[rule.severity],
            "tags": ["security", *rule.advisories],
            "precision": "high",
        },
    }
    urls = [advisory_url(a) for a in rule.advisories if advisory_url(a)]
    if urls:
        out["helpUri"] = urls[0]
    return out


def _sarif_result(f: Finding, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {"severity": f.severity, "security-severity": _SECURITY_SEVERITY[f.severity]}
    if f.executes:
        properties["executes"] = f.executes
    if f.advisories:
        properties["advisories"] = list(f.advisories)
    for key in ("sha256", "format"):
        if getattr(f, key, None):
            properties[key] = getattr(f, key)
    return {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": quote(f.file), "uriBaseId": "SRCROOT"},
                    "region": {"startLine": max(1, f.line)},
                }
            }
        ],
        "partialFingerprints": {"owstack/v1": f"{f.rule}:{f.file}:{f.line}:{RANK[f.severity]}"},
        "properties": properties,
    }
