"""opencode and Crush project configs beyond their MCP servers, and opencode's plugin folder.

.opencode/plugin(s)/*.{js,ts}   loaded into opencode at start, unasked (high; critical when the code runs a
                                download or sends the environment to a server)
opencode.json  plugin/plugins   npm packages installed and loaded at start (medium unpinned, critical from a
                                URL or git; a local folder the repository ships: high)
               formatter.*.command, lsp.*.command      run by themselves after every edit and when a file
                                is opened: judged as VS Code program settings (`vscode.program_severity`)
               provider.*.options.baseURL              model traffic, and the user's key, sent elsewhere
               instructions (URLs)                     instructions fetched anew at every session (medium)
crush.json     lsp.*.command (+ args), providers.*.base_url   the same
"""

from __future__ import annotations

import re
from typing import Any

from owstack.security.config_scan import mcp
from owstack.security.config_scan.claude import runs_anything
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import ScanFile, command_line, destination
from owstack.security.config_scan.permissions import check_grants
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, Severity, finding

#: providers whose key opencode or Crush takes from the user's own environment or login when the repository
#: only overrides the base URL
_BUILTIN_PROVIDERS = frozenset(
    {
        "anthropic",
        "openai",
        "google",
        "google-vertex",
        "openrouter",
        "groq",
        "xai",
        "mistral",
        "deepseek",
        "amazon-bedrock",
        "azure",
        "github-copilot",
        "opencode",
        "gemini",
        "vertexai",
        "bedrock",
        "together",
        "fireworks",
        "cerebras",
    }
)
_KEY_FROM_ENV = re.compile(r"\{env:|\$\{?[A-Z_]")
_SHELL_TEMPLATE = re.compile(r"\$`([^`]{1,2000})`")
_FETCH = re.compile(
    r"\bfetch\s*\(|https?://|\bcurl\b|\bwget\b|require\(['\"]https?['\"]\)|from ['\"](?:node:)?https?['\"]"
)
_RUNS = re.compile(r"\beval\s*\(|new\s+Function\s*\(|child_process|Bun\.spawn|\bexecSync\b|\bspawnSync\b")
_ENV = re.compile(r"process\.env\b|Bun\.env\b|Deno\.env\b")


def check_plugin(src: ScanFile) -> list[Finding]:
    """A JS/TS file in `.opencode/plugin/` or `.opencode/plugins/` (opencode loads it at start)."""
    severity: Severity = "high"
    why = "its code runs inside opencode, with the user's files and keys"
    for m in _SHELL_TEMPLATE.finditer(src.text):
        if risk(m.group(1)).severity == "critical":
            severity, why = "critical", f"it runs a shell command that {risk(m.group(1)).why}"
            break
    if severity == "high" and _FETCH.search(src.text):
        if _RUNS.search(src.text):
            severity, why = "critical", "it fetches code from the network and runs it"
        elif _ENV.search(src.text):
            severity, why = "critical", "it reads the environment (the user's keys) and talks to a server"
    message = f"opencode loads this plugin at start, unasked: {why}"
    return [finding("OWS-OC-001", src.rel, 1, message, executes=src.rel, severity=severity)]


def check_opencode(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc is not None else None
    out = mcp.check(src)
    if not isinstance(data, dict):
        return out
    for key in ("plugin", "plugins"):
        for i, spec in enumerate(data.get(key) or [] if isinstance(data.get(key), list) else []):
            name = spec.get("package") if isinstance(spec, dict) else spec
            if isinstance(name, str):
                out += _plugin_package(src, (key, i), name)
    out += _permissions(src, data.get("permission"), ("permission",))
    agents = data.get("agent")
    for name, spec in agents.items() if isinstance(agents, dict) else []:
        if isinstance(spec, dict):
            out += _permissions(src, spec.get("permission"), ("agent", str(name), "permission"))
    for section in ("formatter", "lsp"):
        entries = data.get(section)
        for tool, spec in entries.items() if isinstance(entries, dict) else []:
            if isinstance(spec, dict) and spec.get("command") and spec.get("disabled") is not True:
                out += _program(src, (section, tool, "command"), section, tool, spec["command"], None)
    providers = data.get("provider")
    for provider, spec in providers.items() if isinstance(providers, dict) else []:
        options = spec.get("options") if isinstance(spec, dict) else None
        if isinstance(options, dict) and isinstance(options.get("baseURL"), str):
            api_key = options.get("apiKey")
            out += _base_url(src, ("provider", provider, "options", "baseURL"), provider, options["baseURL"], api_key)
    for i, item in enumerate(data.get("instructions") or [] if isinstance(data.get("instructions"), list) else []):
        if isinstance(item, str) and re.match(r"^https?://", item) and destination(item) != "local":
            message = f"instructions fetched from {item} at every session: they can change after review"
            line = src.line("instructions", i)
            out.append(finding("OWS-OC-003", src.rel, line, message, executes=item, severity="medium"))
    return out


def _permissions(src: ScanFile, permission: Any, path: tuple[str, ...]) -> list[Finding]:
    """opencode's `permission.bash`: "allow" (or `{"*": "allow"}`, or a shell or interpreter with any arguments
    allowed) runs every command the agent chooses without asking; `"permission": "allow"` allows every tool."""
    grants: list[tuple[tuple[str, ...], str]] = []
    if permission == "allow":
        grants.append((path, "every tool"))
    bash = permission.get("bash") if isinstance(permission, dict) else None
    if bash == "allow":
        grants.append(((*path, "bash"), "bash"))
    for pattern, verdict in bash.items() if isinstance(bash, dict) else []:
        if verdict == "allow" and runs_anything(str(pattern).replace(" *", ":*")):
            grants.append(((*path, "bash", str(pattern)), f"bash {pattern!r}"))
    out = []
    for where, what in grants:
        message = f"`{'.'.join(where)}` lets the agent run {what} without asking: any shell command"
        out.append(finding("OWS-HK-002", src.rel, src.line(*where), message, executes=f"{'.'.join(where)}: allow"))
    return out


def check_crush(src: ScanFile) -> list[Finding]:
    data = src.doc.value if src.doc is not None else None
    out = mcp.check(src)
    if not isinstance(data, dict):
        return out
    lsp = data.get("lsp")
    for name, spec in lsp.items() if isinstance(lsp, dict) else []:
        if isinstance(spec, dict) and isinstance(spec.get("command"), str) and spec.get("disabled") is not True:
            out += _program(src, ("lsp", name, "command"), "lsp", name, spec["command"], spec.get("args"))
    permissions = data.get("permissions")
    allowed = permissions.get("allowed_tools") if isinstance(permissions, dict) else None
    out += check_grants(src, allowed, ("permissions", "allowed_tools"), "permissions.allowed_tools")
    providers = data.get("providers")
    for name, spec in providers.items() if isinstance(providers, dict) else []:
        if isinstance(spec, dict) and isinstance(spec.get("base_url"), str):
            out += _base_url(src, ("providers", name, "base_url"), name, spec["base_url"], spec.get("api_key"))
    return out


def _plugin_package(src: ScanFile, path: tuple[str | int, ...], spec: str) -> list[Finding]:
    line = src.line(*path)
    if spec.startswith(("./", "../", "/", "~", "file:")):
        message = f"opencode loads the plugin folder {spec!r} at start: its code runs inside opencode"
        return [finding("OWS-OC-001", src.rel, line, message, executes=spec, severity="high")]
    danger = risk(["npx", "-y", spec])
    if danger.severity in ("info", "low"):
        return []
    message = f"opencode installs and loads the npm plugin {spec!r} at start: {danger.why.removeprefix('npx ')}"
    return [finding("OWS-OC-001", src.rel, line, message, executes=spec, severity=danger.severity)]


def _program(src: ScanFile, path: tuple[str, ...], section: str, name: str, command: Any, args: Any) -> list[Finding]:
    line = command_line(command, args if isinstance(args, list) else None)
    severity, why = program_severity(src, line)
    if severity == "low":
        return []  # a formatter or language server on the PATH: what every setup has
    when = "after every edit" if section == "formatter" else "when a file of its language is opened"
    message = f"{section} {name!r} runs by itself {when}: {why}"
    return [finding("OWS-OC-002", src.rel, src.line(*path), message, executes=line, severity=severity)]


def _base_url(src: ScanFile, path: tuple[str, ...], name: str, url: str, key: Any) -> list[Finding]:
    if destination(url) != "elsewhere":
        return []  # this machine, or the provider's own API
    with_key = name.lower() in _BUILTIN_PROVIDERS or (isinstance(key, str) and bool(_KEY_FROM_ENV.search(key)))
    severity: Severity = "critical" if with_key else "high"
    message = f"provider {name!r} sends prompts and code to {url}" + (" with the user's key" if with_key else "")
    return [finding("OWS-OC-003", src.rel, src.line(*path), message, executes=url, severity=severity)]
