"""The finding every scanner reports, and the rule catalogue (`security/data/rules.yaml`) behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Literal

from owstack.security.data_files import load

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
MAX_EXECUTES_CHARS = 300


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity
    advisories: tuple[str, ...]
    fix: str
    description: str


@cache
def rules() -> dict[str, Rule]:
    """Every rule, by id."""
    out: dict[str, Rule] = {}
    for rule_id, spec in load("rules")["rules"].items():
        out[rule_id] = Rule(
            rule_id,
            spec["title"],
            spec["severity"],
            tuple(spec.get("advisories") or ()),
            spec["fix"],
            spec.get("description", spec["title"]),
        )
    return out


def advisory_url(advisory: str) -> str:
    if advisory.startswith("GHSA-"):
        return f"https://github.com/advisories/{advisory}"
    if advisory.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{advisory}"
    return ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file. `executes` is what would run (a command, a URL, decoded hidden text),
    shortened and with secrets masked; `advisories` are the CVE/GHSA ids the rule reproduces."""

    rule: str
    severity: Severity
    file: str
    line: int
    title: str
    message: str
    fix: str
    executes: str | None = None
    advisories: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["advisories"] = list(self.advisories)
        if not self.extra:
            data.pop("extra")
        return data


@dataclass(frozen=True, slots=True)
class ModelFinding(Finding):
    """A finding about a model file: also its format and SHA-256."""

    sha256: str = ""
    format: str = ""


def model_finding(
    rule_id: str,
    file: str,
    message: str,
    *,
    sha256: str,
    fmt: str,
    executes: str | None = None,
    severity: Severity | None = None,
    line: int = 1,
    **extra: Any,
) -> ModelFinding:
    base = finding(rule_id, file, line, message, executes=executes, severity=severity, **extra)
    return ModelFinding(
        base.rule,
        base.severity,
        base.file,
        base.line,
        base.title,
        base.message,
        base.fix,
        base.executes,
        base.advisories,
        base.extra,
        sha256,
        fmt,
    )


def finding(
    rule_id: str,
    file: str,
    line: int,
    message: str,
    *,
    executes: str | None = None,
    severity: Severity | None = None,
    **extra: Any,
) -> Finding:
    """A finding of rule `rule_id` (title, default severity, advisories and fix come from the catalogue)."""
    rule = rules()[rule_id]
    if executes is not None and len(executes) > MAX_EXECUTES_CHARS:
        executes = executes[: MAX_EXECUTES_CHARS - 1] + "…"
    return Finding(
        rule_id,
        severity or rule.severity,
        file,
        line,
        rule.title,
        message,
        rule.fix,
        executes,
        rule.advisories,
        dict(extra),
    )


def at_least(severity: str, threshold: str) -> bool:
    return RANK[severity] >= RANK[threshold]


def sort_key(f: Finding) -> tuple[int, str, int, str]:
    return (-RANK[f.severity], f.file, f.line, f.rule)
