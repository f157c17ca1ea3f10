"""Agent instruction files, chat templates, Langflow flows and Langflow version pins."""

from __future__ import annotations

import bisect
import dataclasses
import re
from functools import cache
from typing import Any

import yaml

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.config_scan.hooks import commands_in as hooks_commands
from owstack.security.data_files import load
from owstack.security.findings import Finding, Severity, finding
from owstack.security.guard import GuardFinding, scan_text
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
BANG_COMMAND = re.compile(r"!`([^`\n]{1,2000})`")


def check_instructions(src: ScanFile) -> list[Finding]:
    lines = _Lines(src.text)
    downloads = _download_commands(src, lines)
    out: list[Finding] = _bang_commands(src, lines) + _shell_injections(src, lines) + _frontmatter_hooks(src)
    out += _imports(src, lines) + downloads
    # low guard findings are quoted or example mentions ("phrases such as ..."), or prose encoded as base64
    guard = [f for f in scan_text(src.text, source="instructions") if f.severity != "low"]
    hidden = [(f.start, f.end) for f in guard if f.category == "hidden_text"]
    on_demand = bool(_ON_DEMAND.search("/" + src.rel.lower()))
    for f in guard:
        rule, severity = _GUARD_MAP.get(f.rule, ("OWS-AI-004", None))
        message = f"{f.message} ({f.rule})"
        if rule == "OWS-AI-004":
            around = _around(src.text, lines.at(f.start))
            why = _hidden(f, hidden) or _attack_nearby(f, around, {d.line for d in downloads})
            # a phrase alone: medium in a context file read into every session, low in a skill or command
            severity = "high" if why else "low" if on_demand else "medium"
            message += (
                f"; {why}" if why else " (in a skill, command or prompt the developer invokes)" if on_demand else ""
            )
        out.append(
            finding(
                rule,
                src.rel,
                lines.at(f.start),
                message,
                executes=f.excerpt or None,
                severity=severity,
                category=f.category,
            )
        )
    return out


#: credential files and folders an instruction could send the agent to read
_CREDENTIAL_FILES = (
    r"(?:~|\$HOME|/home/\w+|/root)?/?\.(?:ssh|aws/credentials|aws|netrc|npmrc|pypirc|git-credentials|kube/config"
    r"|docker/config\.json|config/gcloud|gnupg)\b|\bid_(?:rsa|ed25519|ecdsa|dsa)\b|(?<![\w.])\.env\b"
)
_CREDENTIALS = re.compile(_CREDENTIAL_FILES + r"|\bprivate[ _-]key\b", re.I)
_CREDENTIAL_FILE = re.compile(_CREDENTIAL_FILES, re.I)


@dataclasses.dataclass(frozen=True)
class _Around:
    """The lines next to a finding: its own, the one before and the one after, within its paragraph."""

    first: int
    last: int
    text: str


def _around(text: str, line: int) -> _Around:
    """Lines `line - 1` to `line + 1` (1-based) of `text`, cut at blank lines: a list item or a sentence and its
    neighbours, not a whole skill written as one long list."""
    rows = text.split("\n")
    first, last = max(1, line - 1), min(len(rows), line + 1)
    while first < line and not rows[first - 1].strip():
        first += 1
    while last > line and not rows[last - 1].strip():
        last -= 1
    return _Around(first, last, "\n".join(rows[first - 1 : last]))


#: an override aimed at what the agent was told before, not at a CLI's prompts ("skip the prompts") or defaults
_SET_ASIDE = re.compile(
    r"\b(?:previous|prior|above|earlier|preceding|original|initial)\b|\b(?:before|previously)$|you\s+(?:were|have\s+been)",
    re.I,
)


def _hidden(hit: GuardFinding, hidden: list[tuple[int, int]]) -> str | None:
    if hit.category != "hidden_text" and any(start <= hit.start < end for start, end in hidden):
        return "the passage is hidden from the reader (an HTML comment)"
    return None


def _attack_nearby(hit: GuardFinding, around: _Around, download_lines: set[int]) -> str | None:
    """Why an injection phrase in an instruction file is high, or None (medium; low in a skill or command).

    Instruction files address the agent by design, and skills and contributor guides speak of prompts,
    credentials, config files and not asking the user as a matter of course ("run these without asking the
    user", "the `.p12` must include the private key", "bypass the interactive prompt"): a phrase alone is
    medium in a context file (AGENTS.md, CLAUDE.md, rules) and low in a skill, command or prompt, as OWS-AI-006
    grades them. It is high when it tells the agent to set aside what it was told before ("ignore all previous
    instructions": a file that is itself the project's instructions has no earlier ones of its own to revoke,
    only the user's and the vendor's), or when the lines next to it hold what an attack needs: a command that
    downloads and runs code (OWS-AI-006); an address off this machine next to a request to hide from the user,
    a request for data or a credential file; a credential file next to a request to hide or to set
    instructions aside, or named by the request itself ("paste the contents of ~/.aws/credentials")."""
    if hit.category == "override" and _SET_ASIDE.search(hit.excerpt):
        return "it sets aside the instructions the agent was given before"
    if any(around.first <= line <= around.last for line in download_lines):
        return "next to a command that downloads and runs code"
    hides = hit.rule == "OWS-GRD-011"
    named = _CREDENTIAL_FILE.search(around.text)
    url = next((u for u in _URL.findall(around.text) if not _LOCAL_URL.match(u)), None)
    if url is not None and (hides or hit.category == "exfiltration" or named is not None):
        return f"next to an address to send to ({url[:60]})"
    if named is not None and (hit.category == "override" or _CREDENTIAL_FILE.search(hit.excerpt)):
        return f"next to {named.group(0)!r}"
    return None


_LOCAL_URL = re.compile(r"https?://(?:localhost|127\.|\[::1\])", re.I)
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
    for m in BANG_COMMAND.finditer(src.text):
        danger = risk(m.group(1))
        if danger.severity == "critical":
            message = f"runs a shell command when invoked: {danger.why}"
            line = lines.at(m.start())
            out.append(finding("OWS-CC-014", src.rel, line, message, executes=command_line(m.group(1))))
    return out


_FRONTMATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def _frontmatter_hooks(src: ScanFile) -> list[Finding]:
    """`hooks:` in the front matter of a Claude Code skill, subagent or command (shaped as the settings' hooks): they
    run by themselves while the skill or agent is active. Critical when a command runs inline or downloaded code,
    as !`…` lines are (OWS-CC-014); the others are what the component is for."""
    m = _FRONTMATTER.match(src.text)
    if m is None or "hooks" not in m.group(1):
        return []
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return []
    tree = meta.get("hooks") if isinstance(meta, dict) else None
    out = []
    for path, command in hooks_commands(tree):
        danger = risk(command)
        if danger.severity != "critical":
            continue
        key = next((p for p in path if isinstance(p, str) and p not in ("hooks", "command")), "hook")
        number = src.text.count("\n", 0, max(0, src.text.find(str(command)[:40]))) + 1
        message = f"a `{key}` hook of this file's front matter runs by itself while it is active: {danger.why}"
        out.append(finding("OWS-CC-014", src.rel, number, message, executes=command_line(command)))
    return out


#: a shell command a Gemini CLI or Qwen Code custom command runs when invoked: !{command}, whose braces may nest
#: (`!{f() { curl … | sh; }; f}`: Gemini CLI matches them, as it does for `{{args}}` inside)
MAX_INJECTION = 2000


def shell_injections(text: str) -> list[tuple[int, str]]:
    """(offset, command) of each `!{...}` in a custom command's text, its braces matched (nested ones included)."""
    out: list[tuple[int, str]] = []
    start = text.find("!{")
    while start >= 0:
        depth, i = 0, start + 1
        while i < len(text) and i - start <= MAX_INJECTION:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        if depth == 0 and i > start + 2:
            out.append((start, text[start + 2 : i]))
        start = text.find("!{", start + 2)
    return out


def _shell_injections(src: ScanFile, lines: _Lines) -> list[Finding]:
    """`!{command}` in a Gemini CLI / Qwen Code custom command (`.gemini/commands/*.toml`): run when the developer
    invokes the command, after a confirmation unless the command is allowed; high when it downloads or inlines
    code (the prompt shows it, but a long command hides the payload at its end)."""
    where = "/" + src.rel.lower()
    if "!{" not in src.text or not ("/.gemini/commands/" in where or "/.qwen/commands/" in where):
        return []
    out = []
    for start, command in shell_injections(src.text):
        danger = risk(command)
        if danger.severity == "critical":
            message = f"runs a shell command when invoked (`!{{...}}`): {danger.why}"
            line = lines.at(start)
            executes = command_line(command)
            out.append(finding("OWS-CC-014", src.rel, line, message, executes=executes, severity="high"))
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
