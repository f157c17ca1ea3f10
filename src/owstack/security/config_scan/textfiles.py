"""Agent instruction files, chat templates, Langflow flows and Langflow version pins."""

from __future__ import annotations

import bisect
import dataclasses
import re
from functools import cache
from typing import Any

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.data_files import load
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
    out: list[Finding] = _bang_commands(src, lines) + _imports(src, lines) + _download_commands(src, lines)
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
    return _with_credentials(src.text, out)


#: credential files and folders an instruction could send the agent to read
_CREDENTIALS = re.compile(
    r"(?:~|\$HOME|/home/\w+|/root)?/?\.(?:ssh|aws/credentials|aws|netrc|npmrc|pypirc|git-credentials|kube/config"
    r"|docker/config\.json|config/gcloud|gnupg)\b|\bid_(?:rsa|ed25519|ecdsa|dsa)\b|(?<![\w.])\.env\b"
    r"|\bprivate[ _-]key\b",
    re.I,
)


def _with_credentials(text: str, found: list[Finding]) -> list[Finding]:
    """Injection findings in a file that also names what an attack needs are high: credential files (planted
    instructions that send the agent to a private key are how repositories steal them), a command that
    downloads and runs code, or an address off this machine to send things to."""
    if not any(f.rule == "OWS-AI-004" and f.severity == "medium" for f in found):
        return found
    why = _what_it_names(text)
    if why is None:
        return found
    out = []
    for f in found:
        if f.rule == "OWS-AI-004" and f.severity == "medium":
            f = dataclasses.replace(f, severity="high", message=f"{f.message}; the file names {why}")
        out.append(f)
    return out


def _what_it_names(text: str) -> str | None:
    named = _CREDENTIALS.search(text)
    if named is not None:
        return repr(named.group(0))
    for span in re.findall(r"`([^`\n]{3,500})`", text):
        if risk(span).severity == "critical":
            return f"a command that {risk(span).why}"
    url = _URL.search(text)
    if url is not None and not re.match(r"https?://(?:localhost|127\.|\[::1\])", url.group(0)):
        return f"an address to send to ({url.group(0)[:60]})"
    return None


_URL = re.compile(r"https?://[^\s)>\]`'\"]+", re.I)


#: `@path` imports (Claude Code's CLAUDE.md and Gemini CLI's GEMINI.md pull the named file into the context)
_IMPORT = re.compile(r"(?:^|[\s(])@((?:~|\$HOME|\.{1,2})?/[^\s`'\")\]]+)")
_SYSTEM_SECRETS = re.compile(r"^/(?:etc/(?:shadow|gshadow|sudoers)|proc/(?:self|\d+)/environ)\b")


def _imports(src: ScanFile, lines: _Lines) -> list[Finding]:
    """`@~/.ssh/id_rsa`-style imports: the agent reads the user's credential into its context at start (high)."""
    out = []
    for m in _IMPORT.finditer(src.text):
        path = m.group(1)
        if _CREDENTIALS.search(path) or _SYSTEM_SECRETS.match(path):
            message = f"imports {path!r} into the agent's context: a credential of the user's machine"
            out.append(finding("OWS-AI-005", src.rel, lines.at(m.start(1)), message, executes=path))
    return out


#: commands an instruction file gives the agent: inline code spans (not Claude's !`...`) and fenced code lines
_SPAN = re.compile(r"(?<![!`])`([^`\n]{6,2000})`(?!`)")
_FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1", re.M | re.S)
_NETWORK = re.compile(r"https?://|\b(?:curl|wget|iwr|irm|invoke-webrequest|urlopen|requests\.get|fetch)\b", re.I)


def _download_commands(src: ScanFile, lines: _Lines) -> list[Finding]:
    """Commands the file tells the agent to run that download and run code from a host that is not a
    well-known installer (`curl -fsSL https://astral.sh/uv/install.sh | sh` is how projects install uv): high
    in a context file read into every session, medium in a skill or command the developer invokes (their
    install sections name third-party installers as a matter of course)."""
    candidates = [(m.start(1), m.group(1)) for m in _SPAN.finditer(src.text)]
    for block in _FENCE.finditer(src.text):
        offset = block.start(2)
        for text in block.group(2).splitlines(keepends=True):
            candidates.append((offset, text.strip().removeprefix("$ ")))
            offset += len(text)
    out: list[Finding] = []
    seen: set[int] = set()
    on_demand = bool(_ON_DEMAND.search("/" + src.rel.lower()))
    for start, command in candidates:
        danger = risk(command)
        if danger.severity != "critical":
            continue
        fetched = danger.why.startswith(("downloads", "installs")) or "fetches" in danger.why
        if not fetched and not _NETWORK.search(command):
            continue  # inline code that stays on this machine: documentation, not a payload
        url = _URL.search(command)
        if url is not None and _known_installer(url.group(0)):
            continue
        line = lines.at(start)
        if line not in seen:
            seen.add(line)
            where = url.group(0).rstrip("\\")[:80] if url else "the network"
            message = f"tells the agent to run a command from {where}: {danger.why}"
            severity: Severity = "medium" if on_demand else "high"
            if on_demand:
                message += " (in a skill, command or prompt the developer invokes)"
            executes = command_line(command)
            out.append(finding("OWS-AI-006", src.rel, line, message, executes=executes, severity=severity))
    return out


#: instruction files read only when the developer invokes them (skills, commands, prompts, chat modes, agents,
#: workflows), as opposed to the context files read into every session (AGENTS.md, CLAUDE.md, rules)
_ON_DEMAND = re.compile(
    r"/(?:skills|commands?|prompts|chatmodes|agents?|workflows|output-styles|microagents)/|/skill\.md$"
    r"|\.(?:prompt|chatmode|agent)\.md$"
)


def _known_installer(url: str) -> bool:
    bare = re.sub(r"^https?://", "", url, flags=re.I).lower()
    return any(bare.startswith(str(prefix).lower()) for prefix in installer_prefixes())


@cache
def installer_prefixes() -> tuple[str, ...]:
    """Official install scripts (`security/data/commands.yaml`, `installer_prefixes`)."""
    return tuple(load("commands").get("installer_prefixes", ()))


def _bang_commands(src: ScanFile, lines: _Lines) -> list[Finding]:
    """`!`command`` lines of Claude Code commands and skills, and of opencode commands, that download or inline
    code (critical)."""
    where = "/" + src.rel.lower()
    if "!`" not in src.text or (
        "/.claude/" not in where and not where.endswith("/skill.md") and "/.opencode/command" not in where
    ):
        return []  # only Claude Code's commands, agents and skills and opencode's commands run them
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
