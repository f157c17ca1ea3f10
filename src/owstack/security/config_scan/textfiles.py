"""Agent instruction files, chat templates, Langflow flows and Langflow version pins."""

from __future__ import annotations

import bisect
import re
from typing import Any

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.findings import Finding, Severity, finding
from owstack.security.guard import scan_text
from owstack.security.template_ssti import TemplateIssue
from owstack.security.templates import TemplateRenderError, find_ssti

#: guard rule -> (config rule, severity) for instruction files
_GUARD_MAP: dict[str, tuple[str, Severity | None]] = {
    "OWS-GRD-001": ("OWS-AI-001", "critical"),
    "OWS-GRD-002": ("OWS-AI-002", "high"),
    "OWS-GRD-003": ("OWS-AI-003", "medium"),
    "OWS-GRD-004": ("OWS-AI-003", "high"),
}


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


#: a shell command a Claude Code custom command or skill runs when invoked: !`command`
_BANG_COMMAND = re.compile(r"!`([^`\n]{1,2000})`")


def check_instructions(src: ScanFile) -> list[Finding]:
    lines = _Lines(src.text)
    out: list[Finding] = _bang_commands(src, lines)
    for f in scan_text(src.text, source="instructions"):
        rule, severity = _GUARD_MAP.get(f.rule, ("OWS-AI-004", None))
        if f.severity == "low":
            continue  # a quoted or example mention ("phrases such as ..."), or prose encoded as base64
        if rule == "OWS-AI-004":
            severity = "high" if f.severity in ("high", "critical") else "medium"
        out.append(
            finding(
                rule,
                src.rel,
                lines.at(f.start),
                f"{f.message} ({f.rule})",
                executes=f.excerpt or None,
                severity=severity,
                category=f.category,
            )
        )
    return out


def _bang_commands(src: ScanFile, lines: _Lines) -> list[Finding]:
    """`!`command`` lines of Claude Code commands and skills that download or inline code (critical)."""
    where = "/" + src.rel.lower()
    if "!`" not in src.text or ("/.claude/" not in where and not where.endswith("/skill.md")):
        return []  # only Claude Code's commands, agents and skills run them
    out = []
    for m in _BANG_COMMAND.finditer(src.text):
        danger = risk(m.group(1))
        if danger.severity == "critical":
            message = f"runs a shell command when invoked: {danger.why}"
            line = lines.at(m.start())
            out.append(finding("OWS-CC-014", src.rel, line, message, executes=command_line(m.group(1))))
    return out


def check_template_file(src: ScanFile) -> list[Finding]:
    """`chat_template.jinja`, or the `chat_template` of `tokenizer_config.json` / `chat_template.json`."""
    if src.doc is None:
        return _ssti(src, src.text, 1)
    data = src.doc.value
    template: Any = data.get("chat_template") if isinstance(data, dict) else None
    if isinstance(template, list):  # [{"name": ..., "template": ...}]
        out: list[Finding] = []
        for i, entry in enumerate(template):
            if isinstance(entry, dict) and isinstance(entry.get("template"), str):
                out += _ssti(src, entry["template"], src.line("chat_template", i, "template"))
        return out
    return _ssti(src, template, src.line("chat_template")) if isinstance(template, str) else []


def _ssti(src: ScanFile, template: str, base_line: int) -> list[Finding]:
    try:
        issues = find_ssti(template)
    except TemplateRenderError as exc:
        return [finding("OWS-SCAN-001", src.rel, base_line, f"chat template does not parse: {exc}")]
    by_line: dict[int, list[TemplateIssue]] = {}
    for issue in issues:
        # Inside JSON the template is one string on one line; in a .jinja file its lines are the file's.
        by_line.setdefault(base_line if src.doc is not None else issue.line, []).append(issue)
    out: list[Finding] = []
    for line, found in sorted(by_line.items()):
        what = ", ".join(i.construct for i in found[:8])
        worst = max((i.severity for i in found), key=lambda s: ("medium", "high", "critical").index(s))
        out.append(
            finding(
                "OWS-TPL-001",
                src.rel,
                line,
                f"template injection constructs: {what}",
                executes=what,
                severity=worst,  # type: ignore[arg-type]
            )
        )
    return out
