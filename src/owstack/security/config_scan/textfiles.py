"""Agent instruction files, chat templates, Langflow flows and Langflow version pins."""

from __future__ import annotations

import bisect
import re
from typing import Any

from owstack.security.config_scan.common import ScanFile
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
_DANGEROUS_CODE = re.compile(
    r"\b(?:os\.(?:system|popen|exec\w*|spawn\w*)|subprocess\.|pty\.spawn|socket\.socket|__import__\s*\("
    r"|(?<![.\w])(?:exec|eval|compile)\s*\(|importlib\.import_module|base64\.b64decode|marshal\.loads"
    r"|pickle\.loads|ctypes\.|shutil\.rmtree|urllib\.request\.urlopen|requests\.(?:get|post)\()"
)
_LANGFLOW_PIN = re.compile(r"(?im)^\s*[\"']?langflow(?:\[[^\]]*\])?\s*(==|<=|<|~=)\s*v?([0-9][0-9a-z.]*)")
_LANGFLOW_IMAGE = re.compile(r"(?im)\blangflow(?:ai)?/langflow(?:-\w+)?:v?([0-9][0-9a-z.]*)")
_FIXED = (1, 3, 0)


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def check_instructions(src: ScanFile) -> list[Finding]:
    lines = _Lines(src.text)
    out: list[Finding] = []
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


def is_langflow_flow(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("data"), dict) and isinstance(data["data"].get("nodes"), list)


def check_langflow(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc else None
    if not is_langflow_flow(data):
        return []
    assert isinstance(data, dict)
    out: list[Finding] = []
    for i, node in enumerate(data["data"]["nodes"]):
        template = (
            (((node or {}).get("data") or {}).get("node") or {}).get("template") if isinstance(node, dict) else None
        )
        code = (template or {}).get("code") if isinstance(template, dict) else None
        value = code.get("value") if isinstance(code, dict) else None
        if not isinstance(value, str):
            continue
        hits = sorted({m.group() for m in _DANGEROUS_CODE.finditer(value)})
        if hits:
            line = src.line("data", "nodes", i, "data", "node", "template", "code", "value")
            out.append(
                finding(
                    "OWS-LF-001",
                    src.rel,
                    line,
                    f"node {node.get('id', i)!r} runs Python that calls {', '.join(hits[:5])}",
                    executes="; ".join(hits[:5]),
                )
            )
    return out


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_langflow_pins(src: ScanFile) -> list[Finding]:
    lines = _Lines(src.text)
    out: list[Finding] = []
    for m in _LANGFLOW_PIN.finditer(src.text):
        op, version = m.group(1), _version(m.group(2))
        vulnerable = version < _FIXED if op in ("==", "<=", "~=") else version <= _FIXED
        if vulnerable and version:
            out.append(
                finding(
                    "OWS-LF-002",
                    src.rel,
                    lines.at(m.start()),
                    f"langflow {op}{m.group(2)} is before 1.3.0",
                    executes=m.group().strip(),
                )
            )
    for m in _LANGFLOW_IMAGE.finditer(src.text):
        if _version(m.group(1)) and _version(m.group(1)) < _FIXED:
            out.append(
                finding(
                    "OWS-LF-002", src.rel, lines.at(m.start()), f"image {m.group()} is before 1.3.0", executes=m.group()
                )
            )
    return out
