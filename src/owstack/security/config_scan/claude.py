"""Claude Code project settings: `.claude/settings.json` and `.claude/settings.local.json`.

Severity follows impact: a command that runs inline or downloaded code is critical wherever it sits
(hooks, helpers); settings that redirect model or cloud traffic (`ANTHROPIC_BASE_URL`, `AWS_ENDPOINT_URL`
with Bedrock on, proxies) are critical; plugins enabled from a marketplace the repository itself
declares are critical (a plugin brings hooks, MCP servers and commands), unless that marketplace is a
folder of the checkout, whose plugin is read and judged by what it runs (`plugins`); hooks that run a
version-pinned published package are medium (`hooks.severity`); permission rules that let the
agent run a shell or an interpreter, or rewrite its own settings, without asking are high.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from owstack.security.config_scan import hooks, plugins
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, env_risk, is_secret, mask
from owstack.security.config_scan.scripts import local_risk
from owstack.security.findings import Finding, Severity, finding

_BROAD_ALLOW = frozenset(
    {"bash", "bash(*)", "bash(*:*)", "bash(:*)", "bash(**)", "*", "webfetch", "webfetch(*)", "mcp__*", "write", "edit"}
)
#: programs that run arbitrary code when allowed with a wildcard (`Bash(sh:*)`, `Bash(python3 -c:*)`)
_CODE_RUNNERS = re.compile(
    r"^(?:sudo\s+|env\s+|command\s+|exec\s+)*(?:[\w./-]*/)?(?:sh|bash|zsh|dash|ksh|fish|pwsh|powershell|cmd|"
    r"python[\d.]*|pypy[\d.]*|node|nodejs|deno|bun|perl|ruby|php|lua|osascript|eval|source|\.|xargs|find|awk|"
    r"curl|wget|nc|ncat|socat|ssh|scp|npx|bunx|uvx|pipx|docker|podman|kubectl|sudo|su|chmod|crontab|"
    r"git\s+config|npm\s+exec|pip[\d.]*\s+install|uv\s+run)(?:\s+-{1,2}[\w-]+)*\s*(?::\*|\*)?$",
    re.I,
)
_SELF_EDIT = re.compile(r"^(?:edit|write|multiedit)\((?:\*\*|/\*\*|~/|/|\.\.|[^)]*\.claude|[^)]*\.mcp\.json)", re.I)
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
            danger = risk(value)
            if danger.severity != "critical":
                danger = local_risk(src, value) or danger
            severity: Severity | None = "critical" if danger.severity == "critical" else None
            message = f"`{key}` runs a shell command"
            out.append(finding(rule, src.rel, src.line(key), message, executes=value, severity=severity))
    status = data.get("statusLine")
    if isinstance(status, dict) and status.get("command"):
        out.append(
            finding(
                "OWS-CC-011",
                src.rel,
                src.line("statusLine", "command"),
                "`statusLine` runs a shell command on every status update",
                executes=str(status["command"]),
                severity="critical" if risk(str(status["command"])).severity == "critical" else None,
            )
        )
    out += _env(src, data.get("env"))
    out += _permissions(src, data.get("permissions"))
    out += _mcp(src, data, mcp_commands)
    out += _plugins(src, data)
    return out


def _plugins(src: ScanFile, data: dict[str, Any]) -> list[Finding]:
    """`extraKnownMarketplaces` (marketplaces the repository adds) and `enabledPlugins` ("name@market")."""
    out: list[Finding] = []
    markets = data.get("extraKnownMarketplaces")
    declared = {str(k): v for k, v in markets.items()} if isinstance(markets, dict) else {}
    switches = data.get("enabledPlugins")
    enabled = [k for k, v in switches.items() if v not in (False, None)] if isinstance(switches, dict) else []
    if isinstance(switches, list):
        enabled = [str(p) for p in switches]
    used: set[str] = set()
    for plugin in enabled:
        market = plugin.rpartition("@")[2] if "@" in plugin else ""
        from_repo = market in declared
        used.add(market)
        source = _market_source(declared.get(market))
        message = f"plugin {plugin!r} is enabled" + (
            f" from the marketplace this repository declares ({source})" if from_repo else ""
        )
        line = src.line("enabledPlugins", plugin)
        severity: Severity = "critical" if from_repo else "high"
        local = plugins.local_plugin(src.path.parent.parent, declared.get(market), plugin.rpartition("@")[0])
        if local is not None:  # the plugin is a folder of this repository: judged by what it runs
            severity = local.severity
            message += f"; it lives in this repository ({local.folder}) and " + (
                f"starts programs by itself ({', '.join(local.runs)})"
                if local.runs
                else "carries only skills, commands and agents (text, its SKILL.md files scanned as instructions)"
            )
        out.append(finding("OWS-CC-013", src.rel, line, message, executes=source or plugin, severity=severity))
    for market, spec in declared.items():
        if market not in used:
            line = src.line("extraKnownMarketplaces", market)
            message = f"adds plugin marketplace {market!r} ({_market_source(spec)}) for everyone who opens the project"
            out.append(finding("OWS-CC-013", src.rel, line, message, executes=_market_source(spec), severity="medium"))
    return out


def _market_source(spec: Any) -> str:
    source = spec.get("source") if isinstance(spec, dict) else None
    if isinstance(source, dict):
        return str(source.get("repo") or source.get("url") or source.get("path") or source)
    return str(source or spec or "")


def _hooks(src: ScanFile, tree: Any) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(tree, dict):
        return out
    for event, matchers in tree.items():
        for i, matcher in enumerate(matchers if isinstance(matchers, list) else []):
            entries = matcher.get("hooks") if isinstance(matcher, dict) else None
            for j, hook in enumerate(entries if isinstance(entries, list) else []):
                if isinstance(hook, dict) and hook.get("command"):
                    line = src.line("hooks", event, i, "hooks", j, "command")
                    danger = risk(hook["command"])
                    if danger.severity != "critical":
                        danger = local_risk(src, hook["command"]) or danger
                    out.append(
                        finding(
                            "OWS-CC-001",
                            src.rel,
                            line,
                            f"a `{event}` hook runs a shell command ({danger.why})",
                            executes=command_line(hook["command"]),
                            severity=hooks.severity(danger),
                            event=event,
                        )
                    )
    return out


def _env(src: ScanFile, env: Any) -> list[Finding]:
    out: list[Finding] = []
    if not isinstance(env, dict):
        return out
    bedrock = str(env.get("CLAUDE_CODE_USE_BEDROCK", "")).strip() not in ("", "0", "false")
    for key, value in env.items():
        line = src.line("env", key)
        found = env_risk(key, value)
        if found is not None and found.kind == "redirect" and found.severity != "low":
            note = " (Bedrock is on: the AWS credentials go there too)" if bedrock and "AWS" in key.upper() else ""
            rule = "OWS-CC-004"
            out.append(
                finding(rule, src.rel, line, found.message + note, executes=f"{key}={value}", severity=found.severity)
            )
        elif is_secret(key, value):
            message = f"`env.{key}` holds a literal credential"
            out.append(finding("OWS-CC-005", src.rel, line, message, executes=f"{key}={mask(str(value))}"))
        elif found is not None and found.kind == "tls":
            out.append(finding("OWS-CC-012", src.rel, line, found.message, executes=f"{key}={value}"))
        elif found is not None and found.kind == "exec":
            message = f"`env.{key}` changes what every command loads"
            out.append(
                finding("OWS-CC-006", src.rel, line, message, executes=f"{key}={value}", severity=found.severity)
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
        why = _allow_problem(rule) if isinstance(rule, str) else None
        if why is not None:
            severity, reason = why
            line = src.line("permissions", "allow", i)
            message = f"`permissions.allow` grants {rule!r} without asking: {reason}"
            out.append(finding("OWS-CC-008", src.rel, line, message, executes=rule, severity=severity))
    dirs = permissions.get("additionalDirectories")
    for i, d in enumerate(dirs if isinstance(dirs, list) else []):
        if isinstance(d, str) and re.match(r"^(?:/|~|\$HOME|\$\{HOME\}|[A-Za-z]:\\)(?:/?|/\.\w+.*|\\)$", d.strip()):
            line = src.line("permissions", "additionalDirectories", i)
            message = f"`permissions.additionalDirectories` opens {d!r} to the agent"
            out.append(finding("OWS-CC-008", src.rel, line, message, executes=d, severity="medium"))
    return out


def runs_anything(command: str) -> bool:
    """An allowed command pattern that lets the agent run a shell or interpreter with any arguments (`*`,
    `sh:*`, `python3 -c`, `curl`); other agents' allow lists use the same test."""
    text = command.strip()
    return text in ("*", "*:*", ":*", "**", "") or bool(_CODE_RUNNERS.match(text))


def _allow_problem(rule: str) -> tuple[Severity, str] | None:
    """(severity, reason) for an allow rule that is too broad, else None."""
    compact = rule.replace(" ", "").lower()
    m = re.match(r"^bash\((.*)\)$", rule.strip(), re.I | re.S)
    if m and runs_anything(m.group(1)):
        return "high", "the agent may run a shell or interpreter with any arguments"
    if compact in ("bash", "*"):
        return "high", "the agent may run any command"
    if _SELF_EDIT.match(rule.strip()) or compact in ("write", "edit", "multiedit"):
        return "high", "the agent may rewrite files outside the project or its own settings"
    if compact in _BROAD_ALLOW:
        return "medium", "the agent may fetch any URL or call any MCP tool"
    return None


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
