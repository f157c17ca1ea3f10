"""Editors' project configs that start programs or run code when a folder is opened (OWS-EDIT-001):

    .helix/languages.toml     `[language-server.NAME] command/args` (started when a file of its language is
                              opened) and `[[language]] formatter` (run on save with `auto-format`); Helix loads
                              them unasked before its workspace trust, and after it once the folder is trusted
    .nvim.lua, .nvimrc, .exrc Neovim's and Vim's `exrc` files (Lua or Vim script run at start, once trusted with
                              `:trust`, or, in Vim, whenever `exrc` is set); `.lazy.lua`, lazy.nvim's project spec
                              (run once trusted; its `build` commands run on install)
    *.sublime-project         Sublime Text: LSP clients (`settings.LSP.*.command`, started when a matching file is
                              opened), SublimeLinter `executable`s (run as files are linted, on load) and
                              `build_systems` (run on Ctrl+B; high when they download and run code)
    .dir-locals.el            Emacs directory variables: `eval` forms and program-valued variables, run after
                              the "unsafe local variables" question is answered yes

Helix programs are judged as VS Code's program settings are (`vscode.program_severity`: critical for a program
the repository ships or a command line that runs code, medium for a repository path not there yet). The Vim and
Emacs files run only after a question, so their findings stop at high: a line that downloads and runs code or
sends credentials (high), code that runs a shell at load without fetching anything (medium).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from owstack.security.config_scan.commands import Risk, risk
from owstack.security.config_scan.common import ScanFile, command_line, env_risk
from owstack.security.config_scan.scripts import local_risk
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, Severity, finding

_FETCH = re.compile(
    r"\b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod|fetch|nc|ncat|socat)\b|https?://", re.I
)
#: a shell run while the file is read: Lua's `os.execute`, `io.popen`, `vim.fn.system`, `vim.system`, jobs; Vim
#: script's `:!cmd`, `system()`; Emacs' `shell-command`, `call-process`, `start-process`, `make-process`
_SHELL_AT_LOAD = re.compile(
    r"\bos\.execute\s*\(|\bio\.popen\s*\(|\bvim\.fn\.(?:system|systemlist|jobstart|termopen)\s*\(|\bvim\.system\s*\(|"
    r"^\s*(?::?\s*)?(?:silent!?\s+|exe(?:cute)?\s+['\"])?!\S|\b(?:call\s+)?(?:system|systemlist|jobstart)\s*\(|"
    r"\((?:async-)?shell-command\b|\((?:call|start|make)-process\b|\(process-lines\b",
    re.I,
)


#: code evaluated from a string at load: Lua's `load`/`loadstring`/`dofile` and Vim's `luaeval`/`execute`, Emacs'
#: `eval-buffer`/`read`/`load`, fed by a download, a command's output or a decoded payload
_LOADS_FETCHED = re.compile(
    r"\b(?:load|loadstring|dofile)\s*\(|\bluaeval\s*\(|\bexecute\s+system\s*\(|\(eval-buffer\b|\(eval\s+\(read\b|"
    r"\(load\s+\\?\"https?:|\burl-(?:retrieve|insert-file-contents|copy-file)\b|\bbase64\.decode\b|\bvim\.base64\b|"
    r"\(base64-decode-string\b",
    re.I,
)


def check_helix(src: ScanFile) -> list[Finding]:
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed TOML ({exc})")]
    out: list[Finding] = []
    servers = data.get("language-server")
    for name, spec in servers.items() if isinstance(servers, dict) else []:
        if isinstance(spec, dict) and isinstance(spec.get("command"), str):
            what = f"the language server {name!r} (started when a file of its language is opened)"
            path = ("language-server", str(name), "command")
            out += _program(src, path, what, spec["command"], spec.get("args"))
        env = spec.get("environment") if isinstance(spec, dict) else None
        for key, value in env.items() if isinstance(env, dict) else []:
            found = env_risk(str(key), value)
            if found is not None and found.severity in ("high", "critical"):
                message = f"the language server {name!r} is started with {found.message}"
                line = src.line("language-server", str(name), "environment", str(key))
                out.append(
                    finding("OWS-EDIT-001", src.rel, line, message, executes=f"{key}={value}", severity=found.severity)
                )
    languages = data.get("language")
    for language in languages if isinstance(languages, list) else []:
        formatter = language.get("formatter") if isinstance(language, dict) else None
        if isinstance(formatter, dict) and isinstance(formatter.get("command"), str):
            when = "on every save" if language.get("auto-format") else "on `:format`"
            what = f"the formatter of {language.get('name', '?')!r} (run {when})"
            line = src.line(str(language.get("name", "")), "formatter")
            out += _program(src, (), what, formatter["command"], formatter.get("args"), line)
    return out


def _program(
    src: ScanFile, path: tuple[str, ...], what: str, program: str, args: Any, line: int | None = None
) -> list[Finding]:
    text = command_line(program, args if isinstance(args, list) else None)
    severity, why = program_severity(src, text)
    if severity == "low":
        return []  # a language server or formatter on the PATH: what every setup has
    message = f"{what} makes Helix run {why}"
    at = line if line is not None else src.line(*path)
    return [finding("OWS-EDIT-001", src.rel, at, message, executes=text, severity=severity)]


def check_vim(src: ScanFile) -> list[Finding]:
    """`.nvim.lua`, `.nvimrc`, `.exrc`, `.lazy.lua`: line by line."""
    comment = ("--",) if src.rel.lower().endswith(".lua") else ('"',)
    what = (
        "lazy.nvim runs it once the file is trusted"
        if src.rel.lower().endswith(".lazy.lua")
        else ("Neovim or Vim runs it when the folder is opened with `exrc` on (Neovim: once trusted)")
    )
    return _lines(src, comment, what)


def check_emacs(src: ScanFile) -> list[Finding]:
    """`.dir-locals.el`: line by line (forms that run a shell at load, commands that download and run code)."""
    what = "Emacs runs it when a file of the folder is visited and its local variables are accepted"
    return _lines(src, (";",), what)


def _lines(src: ScanFile, comment: tuple[str, ...], what: str) -> list[Finding]:
    out: list[Finding] = []
    for number, raw in enumerate(src.text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(comment):
            continue
        danger = risk(line)
        severity: Severity | None = None
        if danger.severity == "critical" and (
            danger.why.startswith(("downloads", "sends", "installs")) or _FETCH.search(line)
        ):
            severity = "high"
        elif _LOADS_FETCHED.search(line) and (_FETCH.search(line) or _SHELL_AT_LOAD.search(line)):
            severity, danger = "high", Risk("critical", "evaluates code it fetches or decodes")
        elif danger.severity == "critical" and _SHELL_AT_LOAD.search(line):
            severity = "medium"
        if severity is not None:
            message = f"{what}: {danger.why}"
            out.append(
                finding("OWS-EDIT-001", src.rel, number, message, executes=command_line(line), severity=severity)
            )
    return out


def check_sublime(src: ScanFile) -> list[Finding]:
    """`*.sublime-project`: Sublime Text applies its `settings` when the project is opened, and the LSP package starts
    the clients of `settings.LSP.<name>` (`command`, `env`) as soon as a file its `selector` matches is opened (judged
    as Helix's language servers are); `build_systems` (`cmd`, `shell_cmd`) run when the developer builds (Ctrl+B):
    high when they download and run code, inline or in a script of the repository."""
    data = src.doc.value if src.doc is not None else None
    if not isinstance(data, dict):
        return []
    out: list[Finding] = []
    settings = data.get("settings")
    clients = settings.get("LSP") if isinstance(settings, dict) else None
    for name, spec in clients.items() if isinstance(clients, dict) else []:
        if not isinstance(spec, dict) or spec.get("enabled") is False:
            continue
        command = spec.get("command")
        if isinstance(command, list | str) and command:
            words = [str(w) for w in command] if isinstance(command, list) else [command]
            text = _SUBLIME_VARS.sub("./", command_line(words[0], words[1:]))
            severity, why = program_severity(src, text)
            if severity != "low":
                message = (
                    f"the LSP client {name!r} (started when a matching file is opened) makes Sublime Text run {why}"
                )
                line = src.line("settings", "LSP", str(name), "command")
                out.append(finding("OWS-EDIT-001", src.rel, line, message, executes=text, severity=severity))
        env = spec.get("env")
        for key, value in env.items() if isinstance(env, dict) else []:
            found = env_risk(str(key), value)
            if found is not None and found.severity in ("high", "critical"):
                message = f"the LSP client {name!r} is started with {found.message}"
                line = src.line("settings", "LSP", str(name), "env", str(key))
                out.append(
                    finding("OWS-EDIT-001", src.rel, line, message, executes=f"{key}={value}", severity=found.severity)
                )
    for name, command, path in _sublime_linters(settings):
        words = [str(w) for w in command] if isinstance(command, list) else [str(command)]
        text = _SUBLIME_VARS.sub("./", command_line(words[0], words[1:]))
        severity, why = program_severity(src, text)
        if severity != "low":
            message = f"SublimeLinter runs the linter {name!r} on every file it lints (on load, as you type): {why}"
            out.append(finding("OWS-EDIT-001", src.rel, src.line(*path), message, executes=text, severity=severity))
    systems = data.get("build_systems")
    for i, system in enumerate(systems if isinstance(systems, list) else []):
        if not isinstance(system, dict):
            continue
        for key in ("shell_cmd", "cmd"):
            command = system.get(key)
            if not isinstance(command, list | str) or not command:
                continue
            text = command if isinstance(command, str) else command_line(str(command[0]), [str(w) for w in command[1:]])
            danger = risk(text)
            reason: str | None = danger.why if danger.severity == "critical" else None
            if reason is None and (local := local_risk(src, text)) is not None and local.severity == "critical":
                reason = local.why
            if reason is not None:
                message = f"the build system {system.get('name', i)!r} runs when you build (Ctrl+B): {reason}"
                line = src.line("build_systems", i, key)
                out.append(finding("OWS-EDIT-001", src.rel, line, message, executes=text[:200], severity="high"))
    return out


#: Sublime Text's variables for the project's folder (`${project_path}/bin/x`: a program of the repository)
_SUBLIME_VARS = re.compile(r"\$\{?(?:project_path|folder)\}?/")


def _sublime_linters(settings: Any) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(linter, executable, key path) of SublimeLinter's per-project `executable` settings, in the dotted form its
    docs give for project files (`"SublimeLinter.linters.flake8.executable"`) or nested."""
    if not isinstance(settings, dict):
        return []
    out: list[tuple[str, Any, tuple[str, ...]]] = []
    for key, value in settings.items():
        m = re.fullmatch(r"SublimeLinter\.linters\.([\w.-]+)\.executable", str(key))
        if m and isinstance(value, str | list) and value:
            out.append((m.group(1), value, ("settings", str(key))))
    nested = settings.get("SublimeLinter")
    linters = nested.get("linters") if isinstance(nested, dict) else None
    for name, spec in linters.items() if isinstance(linters, dict) else []:
        command = spec.get("executable") if isinstance(spec, dict) else None
        if isinstance(command, str | list) and command:
            out.append((str(name), command, ("settings", "SublimeLinter", "linters", str(name), "executable")))
    return out
