"""Zed's project settings (`.zed/settings.json`): MCP servers (`context_servers`) and the programs Zed starts
when it opens the project: language servers (`lsp.NAME.binary.path` with `arguments`) and the terminal's shell
(`terminal.shell.program`, `terminal.shell.with_arguments`). Programs are judged as VS Code's are
(`vscode.program_severity`): one the repository ships, or a command line that runs code, is critical."""

from __future__ import annotations

from typing import Any

from owstack.security.config_scan import mcp
from owstack.security.config_scan.common import ScanFile, command_line, env_risk, model_endpoints
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, finding


def check(src: ScanFile) -> list[Finding]:
    out = mcp.check(src)
    data = src.doc.value if src.doc is not None else None
    if not isinstance(data, dict):
        return out
    lsp = data.get("lsp")
    for name, spec in lsp.items() if isinstance(lsp, dict) else []:
        binary = spec.get("binary") if isinstance(spec, dict) else None
        if isinstance(binary, dict) and isinstance(binary.get("path"), str):
            what = f"the language server {name!r}"
            out += _program(src, ("lsp", name, "binary", "path"), what, binary["path"], binary.get("arguments"))
    formatters: list[tuple[tuple[str | int, ...], Any]] = [(("formatter",), data.get("formatter"))]
    languages = data.get("languages")
    for language, spec in languages.items() if isinstance(languages, dict) else []:
        if isinstance(spec, dict):
            formatters.append((("languages", language, "formatter"), spec.get("formatter")))
    for path, formatter in formatters:
        for at, external in _externals(formatter, path):
            if isinstance(external.get("command"), str):
                what = "the formatter (run on every save)"
                out += _program(src, (*at, "command"), what, external["command"], external.get("arguments"))
    for path, url in model_endpoints(data.get("language_models"), ("language_models",)):
        out += mcp.model_traffic(src, path, url, "Zed sends prompts and code (and the provider key) to")
    terminal = data.get("terminal")
    env = terminal.get("env") if isinstance(terminal, dict) else None
    for key, value in env.items() if isinstance(env, dict) else []:
        found = env_risk(str(key), value)
        if found is not None and found.severity in ("high", "critical"):
            message = f"`terminal.env` gives every terminal Zed opens {found.message}"
            line = src.line("terminal", "env", str(key))
            out.append(
                finding("OWS-ZED-001", src.rel, line, message, executes=f"{key}={value}", severity=found.severity)
            )
    shell = terminal.get("shell") if isinstance(terminal, dict) else None
    if isinstance(shell, dict):
        plain = shell.get("program")
        given = shell.get("with_arguments")
        if isinstance(plain, str):
            out += _program(src, ("terminal", "shell", "program"), "the terminal", plain, None)
        elif isinstance(given, dict) and isinstance(given.get("program"), str):
            path = ("terminal", "shell", "with_arguments", "program")
            out += _program(src, path, "the terminal", given["program"], given.get("args"))
    return out


def _externals(formatter: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """The `external` formatters of a Zed `formatter` setting (an object, or a list of formatters run in turn)."""
    items = list(enumerate(formatter)) if isinstance(formatter, list) else [(None, formatter)]
    out = []
    for i, item in items:
        at = path if i is None else (*path, i)
        if isinstance(item, dict) and isinstance(item.get("external"), dict):
            out.append(((*at, "external"), item["external"]))
    return out


def _program(src: ScanFile, path: tuple[str | int, ...], what: str, program: str, args: Any) -> list[Finding]:
    line = command_line(program, args if isinstance(args, list) else None)
    severity, why = program_severity(src, line)
    if severity == "low":
        return []  # a program on the PATH or a system path: what every setup has
    message = f"{what} makes Zed run {why}"
    return [finding("OWS-ZED-001", src.rel, src.line(*path), message, executes=line, severity=severity)]
