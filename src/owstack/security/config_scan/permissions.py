"""Agent configs that let the agent run shell commands without asking, and Amazon Q / Kiro CLI agent files.

    .gemini/settings.json, .qwen/settings.json   tools.allowed (and the older allowedTools): tools that skip the
                                                 confirmation dialog, `run_shell_command(...)` included
    .cursor/cli.json                             permissions.allow: `Shell(...)` rules of Cursor's CLI agent
    crush.json                                   permissions.allowed_tools: `bash`
    .amazonq/cli-agents/*.json, .kiro/agents/*.json   allowedTools (`execute_bash`, `*`, `@builtin`) and
                                                 toolsSettings.execute_bash.allowedCommands; their mcpServers
                                                 and hooks (agentSpawn, userPromptSubmit, ...) as everywhere

A grant of the shell itself, or of a shell, an interpreter or a downloader with any arguments (the test
Claude Code's allow rules get, `claude.runs_anything`), is high: an injected instruction then runs unasked.
"""

from __future__ import annotations

import re
from typing import Any

from owstack.security.config_scan import hooks, mcp
from owstack.security.config_scan.claude import runs_anything
from owstack.security.config_scan.common import ScanFile
from owstack.security.findings import Finding, finding

_CALL = re.compile(r"^\s*([\w@.-]+)\s*(?:\((.*)\))?\s*$", re.S)
_SHELL_TOOLS = frozenset({"run_shell_command", "shelltool", "shell", "bash", "execute_bash", "executebash"})
_EVERYTHING = frozenset({"*", "@builtin", "@builtin/*"})


def shell_grant(rule: str) -> bool:
    """`run_shell_command`, `Shell(*)`, `bash`, `execute_bash(curl)`: the shell tool for any command, or for a
    program that runs code; `*` and `@builtin` grant every tool."""
    if rule.strip().lower() in _EVERYTHING:
        return True
    m = _CALL.match(rule)
    if m is None or m.group(1).lower() not in _SHELL_TOOLS:
        return False
    return m.group(2) is None or runs_anything(m.group(2))


def check_grants(src: ScanFile, rules: Any, path: tuple[str | int, ...], what: str) -> list[Finding]:
    """A finding per shell grant in the list `rules` found at `path`."""
    out: list[Finding] = []
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, str) and shell_grant(rule):
            message = f"`{what}` lets the agent run {rule!r} without asking: a shell, interpreter or downloader"
            out.append(finding("OWS-HK-002", src.rel, src.line(*path, i), message, executes=rule))
    return out


def check_gemini(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc is not None else None
    if not isinstance(data, dict):
        return []
    tools = data.get("tools")
    allowed = tools.get("allowed") if isinstance(tools, dict) else None
    return check_grants(src, allowed, ("tools", "allowed"), "tools.allowed") + check_grants(
        src, data.get("allowedTools"), ("allowedTools",), "allowedTools"
    )


def check_cursor_cli(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc is not None else None
    permissions = data.get("permissions") if isinstance(data, dict) else None
    allow = permissions.get("allow") if isinstance(permissions, dict) else None
    return check_grants(src, allow, ("permissions", "allow"), "permissions.allow")


def check_q_agent(src: ScanFile) -> list[Finding]:
    """An Amazon Q Developer CLI or Kiro CLI agent file: servers, hooks and pre-approved tools."""
    data = src.doc.value if src.doc is not None else None
    if not isinstance(data, dict):
        return []
    out = mcp.check(src)
    if data.get("hooks") is not None:
        out += hooks.check(src, data["hooks"], ("hooks",))
    out += check_grants(src, data.get("allowedTools"), ("allowedTools",), "allowedTools")
    settings = data.get("toolsSettings")
    bash = settings.get("execute_bash") if isinstance(settings, dict) else None
    commands = bash.get("allowedCommands") if isinstance(bash, dict) else None
    for i, command in enumerate(commands if isinstance(commands, list) else []):
        if isinstance(command, str) and runs_anything(re.sub(r"\s*\.\*$", "", command)):
            path = ("toolsSettings", "execute_bash", "allowedCommands", i)
            message = f"`execute_bash.allowedCommands` lets the agent run {command!r} without asking"
            out.append(finding("OWS-HK-002", src.rel, src.line(*path), message, executes=command))
    return out
