"""Claude Code project settings: `.claude/settings.json` and `.claude/settings.local.json`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from owstack.security.config_scan.common import EXEC_ENV, ScanFile, command_line, is_secret, is_url_env, mask
from owstack.security.findings import Finding, finding

_BROAD_ALLOW = frozenset({"bash", "bash(*)", "bash(*:*)", "bash(:*)", "webfetch", "webfetch(*)", "*", "mcp__*"})
_HELPERS = (
    ("apiKeyHelper", "OWS-CC-002"),
    ("awsAuthRefresh", "OWS-CC-003"),
    ("awsCredentialExport", "OWS-CC-003"),
    ("otelHeadersHelper", "OWS-CC-011"),
)


def check(src: ScanFile, mcp_commands: Callable[[], dict[str, str]]) -> list[Finding]:
    """Findings for one Claude Code settings file. `mcp_commands()` gives the project's `.mcp.json`
    servers (name -> command line), to say what `enableAllProjectMcpServers` would start."""
    data = src.doc.value if src.doc else None
    if not isinstance(data, dict):
        return []
    out = _hooks(src, data.get("hooks"))
    for key, rule in _HELPERS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            out.append(finding(rule, src.rel, src.line(key), f"`{key}` runs a shell command", executes=value))
    status = data.get("statusLine")
    if isinstance(status, dict) and status.get("command"):
        out.append(
            finding(
                "OWS-CC-011",
                src.rel,
                src.line("statusLine", "command"),
                "`statusLine` runs a shell command on every status update",
                executes=str(status["command"]),
            )
        )
    out += _env(src, data.get("env"))
    out += _permissions(src, data.get("permissions"))
    out += _mcp(src, data, mcp_commands)
    return out


def _hooks(src: ScanFile, hooks: Any) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(hooks, dict):
        return out
    for event, matchers in hooks.items():
        for i, matcher in enumerate(matchers if isinstance(matchers, list) else []):
            entries = matcher.get("hooks") if isinstance(matcher, dict) else None
            for j, hook in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(hook, dict) and hook.get("command"):
                    line = src.line("hooks", event, i, "hooks", j, "command")
                    out.append(
                        finding(
                            "OWS-CC-001",
                            src.rel,
                            line,
                            f"a `{event}` hook runs a shell command",
                            executes=command_line(hook["command"]),
                            event=event,
                        )
                    )
    return out


def _env(src: ScanFile, env: Any) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(env, dict):
        return out
    for key, value in env.items():
        line = src.line("env", key)
        if is_url_env(key):
            out.append(
                finding(
                    "OWS-CC-004",
                    src.rel,
                    line,
                    f"`env.{key}` sends model traffic and its credentials to {value!r}",
                    executes=f"{key}={value}",
                )
            )
        elif is_secret(key, value):
            out.append(
                finding(
                    "OWS-CC-005",
                    src.rel,
                    line,
                    f"`env.{key}` holds a literal credential",
                    executes=f"{key}={mask(str(value))}",
                )
            )
        elif key.upper() in EXEC_ENV:
            out.append(
                finding(
                    "OWS-CC-006",
                    src.rel,
                    line,
                    f"`env.{key}` changes what every command loads",
                    executes=f"{key}={value}",
                )
            )
    return out


def _permissions(src: ScanFile, permissions: Any) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(permissions, dict):
        return out
    if permissions.get("defaultMode") == "bypassPermissions":
        out.append(
            finding(
                "OWS-CC-007",
                src.rel,
                src.line("permissions", "defaultMode"),
                "`permissions.defaultMode: bypassPermissions` skips the trust dialog and every prompt",
            )
        )
    allow = permissions.get("allow")
    for i, rule in enumerate(allow if isinstance(allow, list) else []):
        if isinstance(rule, str) and rule.replace(" ", "").lower() in _BROAD_ALLOW:
            out.append(
                finding(
                    "OWS-CC-008",
                    src.rel,
                    src.line("permissions", "allow", i),
                    f"`permissions.allow` grants {rule!r} without asking",
                )
            )
    return out


def _mcp(src: ScanFile, data: dict[str, Any], mcp_commands: Callable[[], dict[str, str]]) -> list[Finding]:
    out: list[Finding] = []
    if data.get("enableAllProjectMcpServers") is True:
        servers = mcp_commands()
        started = "; ".join(f"{n}: {c}" for n, c in servers.items()) or None
        out.append(
            finding(
                "OWS-CC-009",
                src.rel,
                src.line("enableAllProjectMcpServers"),
                f"every `.mcp.json` server starts without approval ({len(servers)} defined)",
                executes=started,
            )
        )
    names = data.get("enabledMcpjsonServers")
    if isinstance(names, list) and names:
        servers = mcp_commands()
        started = "; ".join(f"{n}: {servers[n]}" for n in names if isinstance(n, str) and n in servers) or None
        out.append(
            finding(
                "OWS-CC-010",
                src.rel,
                src.line("enabledMcpjsonServers"),
                f"pre-approves MCP servers by name: {', '.join(map(str, names))}",
                executes=started,
            )
        )
    return out
