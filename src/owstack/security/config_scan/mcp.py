"""MCP client configs: `.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`, `.gemini/settings.json`, ...

Servers live under `mcpServers` (Claude Code, Cursor, Gemini CLI, Windsurf, Claude Desktop), `servers`
(VS Code) or `mcp.servers` (VS Code user/workspace settings).
"""

from __future__ import annotations

from typing import Any

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, env_risk, is_secret, mask
from owstack.security.egress.addresses import address_problem, name_problem
from owstack.security.egress.urls import URLRejected, parse
from owstack.security.findings import Finding, Severity, finding
from owstack.security.guard.types import redact

_URL_KEYS = ("url", "serverUrl", "httpUrl")


def servers(data: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(path to the servers map, the map) of an MCP config document, or ((), {})."""
    if not isinstance(data, dict):
        return (), {}
    for path in (("mcpServers",), ("servers",), ("mcp", "servers"), ("mcp.servers",)):
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            return path, node
    return (), {}


def commands(data: Any) -> dict[str, str]:
    """name -> command line of every stdio server in an MCP config document."""
    _, found = servers(data)
    return {
        name: command_line(spec.get("command"), spec.get("args"))
        for name, spec in found.items()
        if isinstance(spec, dict) and spec.get("command")
    }


def check(src: ScanFile) -> list[Finding]:
    base, found = servers(src.doc.value if src.doc else None)
    out: list[Finding] = []
    for name, spec in found.items():
        if isinstance(spec, dict):
            out += _server(src, (*base, name), name, spec)
    return out


def _server(src: ScanFile, path: tuple[str, ...], name: str, spec: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    command, args = spec.get("command"), spec.get("args")
    if command:
        line = src.line(*path, "command")
        cmd = command_line(command, args)
        danger = risk(command, args)
        if danger.severity == "critical":
            out.append(finding("OWS-MCP-002", src.rel, line, f"server {name!r}: {danger.why}", executes=cmd))
        else:
            message = f"server {name!r} starts a local program: {danger.why}"
            out.append(finding("OWS-MCP-001", src.rel, line, message, executes=cmd, severity=danger.severity))
    for key in _URL_KEYS:
        if isinstance(spec.get(key), str):
            out += _remote(src, (*path, key), name, spec[key])
    for section in ("env", "headers"):
        values = spec.get(section)
        for key, value in values.items() if isinstance(values, dict) else []:
            line = src.line(*path, section, key)
            if is_secret(key, value):
                out.append(
                    finding(
                        "OWS-MCP-004",
                        src.rel,
                        line,
                        f"server {name!r}: `{section}.{key}` is a literal credential",
                        executes=f"{key}={mask(str(value))}",
                    )
                )
            elif section == "env" and (found := env_risk(key, value)) is not None and found.severity != "low":
                out.append(
                    finding(
                        "OWS-MCP-005",
                        src.rel,
                        line,
                        f"server {name!r}: {found.message}",
                        executes=f"{key}={value}",
                        severity=found.severity,
                    )
                )
    for i, arg in enumerate(args if isinstance(args, list) else []):
        text = str(arg)
        key, _, value = text.partition("=")
        if (value and is_secret(key.lstrip("-"), value)) or is_secret("", text):
            out.append(
                finding(
                    "OWS-MCP-004",
                    src.rel,
                    src.line(*path, "args", i),
                    f"server {name!r}: a command-line argument is a literal credential",
                    executes=redact(text),
                )
            )
    return out


def _remote(src: ScanFile, path: tuple[str, ...], name: str, url: str) -> list[Finding]:
    line = src.line(*path)
    try:
        target = parse(url)
    except URLRejected as exc:
        return [
            finding(
                "OWS-MCP-003",
                src.rel,
                line,
                f"server {name!r}: URL cannot be read safely: {exc}",
                executes=redact(url),
                severity="medium",
            )
        ]
    problem: str | None
    severity: Severity = "high"
    if target.ip is not None:
        problem = address_problem(target.ip)
    else:
        named = name_problem(target.host)
        problem = named[1] if named else None
    if problem is not None:
        if "metadata" in problem:
            severity = "critical"
        elif "loopback" in problem or "localhost" in problem:
            severity = "low"
        return [
            finding(
                "OWS-MCP-003", src.rel, line, f"server {name!r}: {problem}", executes=redact(url), severity=severity
            )
        ]
    if target.scheme == "http":
        return [finding("OWS-MCP-006", src.rel, line, f"server {name!r} is reached over http", executes=redact(url))]
    return []
