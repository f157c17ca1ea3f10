"""Agent hooks: commands an agent runs by itself on its own events (before a shell command, after an edit, at
the end of a turn), from files a repository carries:

    .cursor/hooks.json            {"version": 1, "hooks": {"beforeShellExecution": [{"command": ...}], ...}}
    .windsurf/hooks.json          {"hooks": {"pre_run_command": [{"command": ...}], ...}}
    .kiro/hooks/*.kiro.hook       {"when": {...}, "then": {"type": "runCommand", "command": ...}}
    .gemini/settings.json, .qwen/settings.json   "hooks" shaped as Claude Code's (event -> matchers -> hooks)
    .codex/config.toml            notify = ["program", "arg", ...] (run after every turn)
    Gemini CLI / Qwen Code        tools.discoveryCommand, tools.callCommand, mcp.serverCommand (and the flat
                                  toolDiscoveryCommand, toolCallCommand, mcpServerCommand of older releases)

Every `command` under the file's hooks is judged by `commands.risk`: inline or downloaded code is critical,
a published package pinned to a version (`bunx prettier@3.5.3 --write .`) medium (it runs unasked, but what
runs is a release anyone can read, not code the repository controls), anything else high (it runs unasked,
whatever it is). Claude Code's own hooks are `claude.py`'s (OWS-CC-001), judged the same way (`severity`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from owstack.security.config_scan import mcp
from owstack.security.config_scan.commands import Risk, risk
from owstack.security.config_scan.common import ScanFile, command_line, destination
from owstack.security.config_scan.scripts import code_risk, local_risk
from owstack.security.findings import Finding, Severity, finding

KeyPath = tuple[str | int, ...]


def commands_in(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """(path, command) of every `command` (a string or a list of strings) in a JSON-like tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "command" and (isinstance(value, str) or (isinstance(value, list) and value)):
                yield (*path, key), value
            else:
                yield from commands_in(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from commands_in(value, (*path, i))


def check(src: ScanFile, tree: Any = None, base: KeyPath = ()) -> list[Finding]:
    """Findings for the commands under `tree` (default: the whole document), found at `base` in the file."""
    if tree is None:
        tree = src.doc.value if src.doc is not None else None
    out: list[Finding] = []
    for path, command in commands_in(tree, base):
        out.append(_finding(src, path, command, _event(path)))
    return out


#: Gemini CLI / Qwen Code settings that name a command the CLI runs by itself (tool discovery at start-up, every
#: discovered tool's call, a legacy MCP server command), flat (older releases) or nested
_SETTINGS_COMMANDS = (
    ("toolDiscoveryCommand",),
    ("toolCallCommand",),
    ("mcpServerCommand",),
    ("tools", "discoveryCommand"),
    ("tools", "callCommand"),
    ("mcp", "serverCommand"),
)


def check_settings(src: ScanFile) -> list[Finding]:
    """Gemini CLI / Qwen Code settings: MCP servers, hooks, and the tool discovery and call commands."""
    data = src.doc.value if src.doc is not None else None
    found = mcp.check(src)
    if not isinstance(data, dict):
        return found
    if data.get("hooks") is not None:
        found += check(src, data["hooks"], ("hooks",))
    for path in _SETTINGS_COMMANDS:
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node.strip():
            found.append(_finding(src, path, node, ".".join(path)))
    return found + _telemetry(src, data)


def _telemetry(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """Gemini CLI / Qwen Code `telemetry.otlpEndpoint` off this machine: the sessions' events (with the prompts, by
    default) go there."""
    telemetry = data.get("telemetry")
    if not isinstance(telemetry, dict):
        return []
    endpoint = telemetry.get("otlpEndpoint")
    if not isinstance(endpoint, str) or telemetry.get("enabled") is False or destination(endpoint) == "local":
        return []
    prompts = "" if telemetry.get("logPrompts") is False else ", prompts included"
    message = f"`telemetry.otlpEndpoint` sends every session's events{prompts} to {endpoint!r}"
    return [finding("OWS-HK-003", src.rel, src.line("telemetry", "otlpEndpoint"), message, executes=endpoint)]


def check_cline_hook(src: ScanFile) -> list[Finding]:
    """A Cline hook: an executable named after its event in `.clinerules/hooks/` (or `.cline/hooks/`), run by Cline
    itself at that event (TaskStart, PreToolUse, ...) once hooks are turned on in Cline's settings (a switch of the
    user's, not the repository's). Critical when a line downloads and runs code or sends credentials (directly or
    through a script of the repository it runs); medium otherwise (the repository's code, run unasked but only
    where the user turned hooks on)."""
    event = PurePosixPath(src.rel).name
    python = src.text.startswith("#!") and "python" in src.text.split("\n", 1)[0]
    found = code_risk(src.text, python=python)
    if found is not None:
        number, danger = found
        line = src.text.splitlines()[number - 1].strip()
    else:
        number, danger, line = 1, Risk("low", "runs the repository's own code"), ""
        for i, text in enumerate(src.text.splitlines(), start=1):
            if text.strip() and not text.lstrip().startswith("#"):
                local = local_risk(src, text.strip())
                if local is not None and local.severity == "critical":
                    number, danger, line = i, local, text.strip()
                    break
    severity: Severity = "critical" if danger.severity == "critical" else "medium"
    why = danger.why.removeprefix("it ")
    message = f"Cline runs this `{event}` hook by itself once hooks are enabled: it {why}"
    return [finding("OWS-HK-001", src.rel, number, message, executes=line[:200] or src.rel, severity=severity)]


def check_notify(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """Codex CLI's `notify`: a program run after every turn."""
    notify = data.get("notify")
    if not (isinstance(notify, list) and notify) and not isinstance(notify, str):
        return []
    return [_finding(src, ("notify",), notify, "notify")]


def _event(path: KeyPath) -> str:
    names = [p for p in path[:-1] if isinstance(p, str) and p not in ("hooks", "then")]
    return names[0] if names else "hook"


def _finding(src: ScanFile, path: KeyPath, command: Any, event: str) -> Finding:
    words = [str(w) for w in command] if isinstance(command, list) else None
    danger = risk(words[0], words[1:]) if words else risk(command)
    if danger.severity != "critical":
        local = local_risk(src, words[0], words[1:]) if words else local_risk(src, command)
        danger = local or danger
    line = src.line(*path)
    message = f"a `{event}` hook runs a command by itself ({danger.why})"
    return finding("OWS-HK-001", src.rel, line, message, executes=command_line(command), severity=severity(danger))


def severity(danger: Risk) -> Severity | None:
    """A hook's severity from the risk of its command: critical for inline or downloaded code, medium for a
    version-pinned published package, else None (the rule's own: high)."""
    return "critical" if danger.severity == "critical" else "medium" if danger.severity == "info" else None
