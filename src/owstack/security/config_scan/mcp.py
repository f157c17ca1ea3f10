"""MCP client configs: `.mcp.json`, `.cursor/mcp.json`, `.vscode/mcp.json`, `.gemini/settings.json`, ...

Servers live under `mcpServers` (Claude Code, Cursor, Gemini CLI, Qwen Code, Windsurf, Claude Desktop, Amazon
Q; a list of named servers in Continue), `servers` (VS Code), `mcp.servers` (VS Code user/workspace settings),
`mcp_servers` (Codex CLI's `config.toml`), `context_servers` (Zed) or `mcp` (opencode, Crush). A server's
command is a string with `args` (most), a list holding the program and its arguments (opencode), or an object
with `path`, `args` and `env` (Zed); its environment is `env` or `environment` (opencode).
"""

from __future__ import annotations

import re
from typing import Any

from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import (
    ScanFile,
    command_line,
    destination,
    env_data,
    env_risk,
    is_secret,
    mask,
    model_endpoints,
)
from owstack.security.config_scan.scripts import local_risk
from owstack.security.egress.addresses import address_problem, name_problem
from owstack.security.egress.urls import URLRejected, parse
from owstack.security.findings import Finding, Severity, finding
from owstack.security.guard.types import redact

_URL_KEYS = ("url", "serverUrl", "httpUrl")


def servers(data: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """(path to the servers map, the map) of an MCP config document, or ((), {}): the first of `all_servers`."""
    found = all_servers(data)
    return found[0] if found else ((), {})


def all_servers(data: Any) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every (path, servers map) of an MCP config document. All are read, not the first found: a file can hold
    `mcpServers` for one client and `servers` for VS Code, and each client starts its own."""
    if not isinstance(data, dict):
        return []
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    for path in _SERVER_PATHS:
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):  # Continue: [{"name": ..., "command": ...}]
            node = {str(s.get("name") or i): s for i, s in enumerate(node) if isinstance(s, dict)}
        if path == ("mcp",) and any(p[0] == "mcp" for p, _ in out):
            continue  # VS Code settings' `mcp` holds `servers`, already read
        if isinstance(node, dict) and node:
            out.append((path, node))
    return out


_SERVER_PATHS = (
    ("mcpServers",),
    ("servers",),
    ("mcp", "servers"),
    ("mcp.servers",),
    ("mcp_servers",),
    ("context_servers",),
    ("experimental", "modelContextProtocolServers"),  # Continue's config.json and .continuerc.json
    ("mcp",),
)


def launch(spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(command, args, env) of a server, whichever client's shape it has (see the module docstring)."""
    if isinstance(spec.get("transport"), dict) and "command" not in spec:  # Continue: {"transport": {...}}
        spec = spec["transport"]
    command, args = spec.get("command"), spec.get("args")
    env = spec.get("env") if spec.get("env") is not None else spec.get("environment")
    if isinstance(command, dict):  # Zed: {"path": ..., "args": [...], "env": {...}}
        zed: dict[str, Any] = command
        command, args, env = zed.get("path"), zed.get("args", args), zed.get("env", env)
    elif isinstance(command, list) and command:  # opencode: ["program", "arg", ...]
        rest = [*command[1:], *(args if isinstance(args, list) else [])]
        command, args = command[0], rest or None
    return command, args, env


def commands(data: Any) -> dict[str, str]:
    """name -> command line of every stdio server in an MCP config document."""
    out = {}
    for name, spec in (item for _, found in all_servers(data) for item in found.items()):
        if isinstance(spec, dict):
            command, args, _ = launch(spec)
            if command:
                out[name] = command_line(command, args)
    return out


def check(src: ScanFile, data: Any = None) -> list[Finding]:
    """Findings for every server of an MCP config (`data`: a document read other than as JSON); for Continue's
    files, also the models' `apiBase` (OWS-LLM-001)."""
    out: list[Finding] = []
    if "continue" in src.rel.lower():
        tree = data if data is not None else src.doc.value if src.doc else None
        models = tree.get("models") if isinstance(tree, dict) else None
        for path, url in model_endpoints(models, ("models",)) if isinstance(models, list) else []:
            out += model_traffic(src, path, url, "Continue sends prompts and code for this model to")
    for base, found in all_servers(data if data is not None else src.doc.value if src.doc else None):
        for name, spec in found.items():
            if isinstance(spec, dict):
                out += _server(src, (*base, name), name, spec)
    return out


def check_servers(src: ScanFile, path: tuple[str | int, ...], found: dict[str, Any]) -> list[Finding]:
    """Findings for a servers map found at `path` of the file (an extension's `amp.mcpServers`, say)."""
    out: list[Finding] = []
    for name, spec in found.items():
        if isinstance(spec, dict):
            out += _server(src, (*path, name), str(name), spec)  # type: ignore[arg-type]
    return out


def _server(src: ScanFile, path: tuple[str, ...], name: str, spec: dict[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    command, args, env = launch(spec)
    if command:
        line = src.line(*path, "command")
        cmd = command_line(command, args)
        danger = risk(command, args)
        if danger.severity != "critical":
            danger = local_risk(src, command, args) or danger
        if danger.severity == "critical":
            out.append(finding("OWS-MCP-002", src.rel, line, f"server {name!r}: {danger.why}", executes=cmd))
        else:
            message = f"server {name!r} starts a local program: {danger.why}"
            out.append(finding("OWS-MCP-001", src.rel, line, message, executes=cmd, severity=danger.severity))
    for key in _URL_KEYS:
        if isinstance(spec.get(key), str):
            out += _remote(src, (*path, key), name, spec[key])
            out += _credentials_sent(src, path, name, spec, spec[key])
    for section in ("env", "headers"):
        values = env if section == "env" else spec.get(section)
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
    given = [str(a) for a in args] if isinstance(args, list) else []
    remote = next((a for a in given if re.match(r"^https?://", a)), None)
    if command and remote is not None:  # a local proxy to a remote server (`npx mcp-remote URL --header ...`)
        extra: list[tuple[str, tuple[str | int, ...]]] = [
            (v, ("args", i)) for i, a in enumerate(given) for v in _references(a)
        ]
        out += _credentials_sent(src, path, name, {}, remote, extra)
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


#: a variable that holds a credential (`<PREFIX>_..._KEY|TOKEN|SECRET|PASSWORD|PAT|CREDENTIALS`); the services and
#: the words their hosts carry are data (`env_vars.yaml`, `credential_services`)
_CREDENTIAL_VARIABLE = re.compile(
    r"^([A-Z][A-Z0-9]*)_\w*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PAT|CREDENTIALS?)\w*$", re.I
)


def credential_service(variable: str) -> tuple[tuple[str, ...], bool] | None:
    """(words the service's hosts carry, whether it is a listed service) of a credential variable, or None when it
    names no service (`MCP_TOKEN`, `API_KEY`) or holds no credential."""
    upper = variable.upper()
    m = _CREDENTIAL_VARIABLE.match(upper)
    if m is None:
        return None
    data = env_data()
    services = {str(k).upper(): v for k, v in (data.get("credential_services") or {}).items()}
    known = sorted((k for k in services if upper.startswith(k + "_")), key=len, reverse=True)
    if known:
        return tuple(str(w).lower() for w in services[known[0]]), True
    prefix = m.group(1)
    generic = {str(p).upper() for p in data.get("credential_generic_prefixes") or ()}
    if prefix in generic or len(prefix) < 3:
        return None
    return (prefix.lower(),), False


_ENV_REFERENCE = re.compile(r"\$\{(?:env:)?([A-Za-z_]\w*)\}|\{env:([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")


def _credentials_sent(
    src: ScanFile,
    path: tuple[str, ...],
    name: str,
    spec: dict[str, Any],
    url: str,
    extra: list[tuple[str, tuple[str | int, ...]]] | None = None,
) -> list[Finding]:
    """A remote server handed a credential of another service from the user's environment: `${env:OPENAI_API_KEY}`
    in its URL or headers, Codex's `bearer_token_env_var` or `env_http_headers`, sent to a host of someone else."""
    refs: list[tuple[str, tuple[str | int, ...]]] = [(v, ("url",)) for v in _references(url)] + (extra or [])
    for section in ("headers", "http_headers"):
        headers = spec.get(section)
        for key, value in headers.items() if isinstance(headers, dict) else []:
            refs += [(v, (section, key)) for v in _references(str(value))]
    if isinstance(spec.get("bearer_token_env_var"), str):
        refs.append((spec["bearer_token_env_var"], ("bearer_token_env_var",)))
    env_headers = spec.get("env_http_headers")
    for key, value in env_headers.items() if isinstance(env_headers, dict) else []:
        refs.append((str(value), ("env_http_headers", key)))
    try:
        host = (parse(url).host or "").lower()
    except URLRejected:
        host = url.lower()
    out = []
    for variable, where in refs:
        service = credential_service(variable)
        if service is None:
            continue
        words, listed = service
        if any(w.replace("_", "") in host.replace("-", "") for w in words):
            continue  # the service's own server (GITHUB_TOKEN to api.githubcopilot.com)
        if not listed and words[0] in name.lower().replace("-", "").replace("_", ""):
            continue  # a token named for the server it is given to (`DOCS_TOKEN` for the server `docs`)
        message = f"server {name!r}: the user's ${variable} is sent to {host or url!r}, not a host of that service"
        if not listed:
            message += f" (judged by its name: {words[0]!r} is not in the host)"
        line = src.line(*path, *where)
        severity: Severity | None = None if listed else "medium"
        executes = f"{variable} -> {redact(url)}"
        out.append(finding("OWS-MCP-007", src.rel, line, message, executes=executes, severity=severity))
    return out


def _references(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _ENV_REFERENCE.finditer(text)]


def model_traffic(src: ScanFile, path: tuple[str | int, ...], url: str, what: str) -> list[Finding]:
    """OWS-LLM-001 for a model endpoint off this machine that is no known provider's."""
    if destination(url) != "elsewhere":
        return []
    message = f"{what} {url!r} (off this machine, no known provider)"
    return [finding("OWS-LLM-001", src.rel, src.line(*path), message, executes=redact(url))]


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
