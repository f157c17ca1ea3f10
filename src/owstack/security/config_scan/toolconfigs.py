"""Tool configs that are code, run by editor extensions when a file is opened and by every lint, build or test an
agent runs (OWS-TOOL-001):

    eslint.config.*, .eslintrc.js, prettier.config.*, .prettierrc.js, tailwind.config.*, postcss.config.*,
    jest.config.*, vitest.config.*, vite.config.*, playwright.config.*, babel.config.*, stylelint.config.*, ...
                          JavaScript the ESLint, Prettier, Tailwind CSS IntelliSense, Jest, Vitest or Playwright
                          extensions load as soon as a matching file is opened, and `npm run lint/build/test` runs
    .pylintrc, pylintrc, setup.cfg, tox.ini, pyproject.toml   pylint's `init-hook`: Python that pylint `exec`s at
                          start, in every `pylint` run and in the pylint extension's linting on open

These files are in every JavaScript and Python project, so they are judged by what their code does: a line that
downloads and runs code or sends credentials, code that runs what it fetches or an encoded payload, or the
environment posted to a server, is high; an `init-hook` that runs a shell without fetching anything is medium;
ordinary configuration and `sys.path` hooks are not reported.
"""

from __future__ import annotations

import re

from owstack.security.config_scan.commands import Risk, risk
from owstack.security.config_scan.common import ScanFile, command_line
from owstack.security.config_scan.scripts import (
    code_risk,
    dangerous_line,
    module_risk,
    python_payload,
    windowed_payload,
)
from owstack.security.findings import Finding, Severity, finding

_INIT_HOOK = re.compile(r"^[ \t]*init[-_]hook[ \t]*[=:][ \t]*(.*)$", re.M)
_SHELL = re.compile(r"\bos\.(?:system|popen|exec\w*|spawn\w*)\s*\(|\bsubprocess\b|\bpty\.spawn\b|(?<![\w.])exec\s*\(")


#: a config line that is a program of its own: thousands of characters that evaluate or load code
_PACKED = re.compile(r"(?<![\w.$])eval\s*\(|\bFunction\s*\(|\brequire\s*\(|\bimport\s*\(|\bchild_process\b")
MAX_LINE = 3000


def check_js_config(src: ScanFile) -> list[Finding]:
    found = code_risk(src.text, javascript=True)
    if found is None:
        found = _packed_line(src.text)
    if found is None:
        return []
    number, danger = found
    name = src.rel.rsplit("/", 1)[-1]
    message = (
        f"{name} is code that editor extensions load when a file is opened and every lint, build or test runs: "
        f"line {number} {danger.why}"
    )
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-TOOL-001", src.rel, number, message, executes=line)]


def _packed_line(text: str) -> tuple[int, Risk] | None:
    """A config file's line of thousands of characters that evaluates or loads code: a packed or obfuscated payload
    (configs are written by hand; bundles are not configs)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_LINE and _PACKED.search(line):
            return number, Risk("critical", f"is a packed line of {len(line)} characters that evaluates or loads code")
    return None


_LOAD_PLUGINS = re.compile(r"^[ \t]*load[-_]plugins[ \t]*[=:][ \t]*(.*)$", re.M)


def check_pylint(src: ScanFile) -> list[Finding]:
    """pylint's `init-hook` in any of the files pylint reads its options from (lenient: the key wherever it is, its
    value with the indented lines that continue it), and `load-plugins` modules of the repository (imported at every
    pylint start) whose code is dangerous."""
    out: list[Finding] = []
    for m in _LOAD_PLUGINS.finditer(src.text):
        for module in re.split(r"[,\s\[\]\"']+", m.group(1)):
            found = module_risk(src, module.strip()) if module.strip() else None
            if found is not None:
                rel, number, danger = found
                message = (
                    f"pylint imports the plugin {module.strip()!r} ({rel}) at every start: line {number} {danger.why}"
                )
                line = src.text.count("\n", 0, m.start()) + 1
                out.append(finding("OWS-TOOL-001", src.rel, line, message, executes=rel))
    if "init" not in src.text:
        return out
    for m in _INIT_HOOK.finditer(src.text):
        value = m.group(1)
        rest = src.text[m.end() :].split("\n")[1:]
        for more in rest:  # an INI value continued on indented lines
            if more[:1] in (" ", "\t") and more.strip():
                value += "\n" + more.strip()
            else:
                break
        code = value.strip().strip("'\"").replace("\\n", "\n").replace(";", "\n")
        line = src.text.count("\n", 0, m.start()) + 1
        severity: Severity | None = None
        why = ""
        payload = python_payload(code)
        shell = _shell_payload(code)
        if payload is not None or shell is not None:
            severity, why = "high", payload[1] if payload is not None else str(shell)
        elif _SHELL.search(code):
            severity, why = "medium", "runs a program or code beyond setting the import path"
        if severity is not None:
            message = f"pylint runs `init-hook` at every start (and the pylint extension on open): it {why}"
            executes = command_line(value.strip())[:200]
            out.append(finding("OWS-TOOL-001", src.rel, line, message, executes=executes, severity=severity))
    return out


def _shell_payload(code: str) -> str | None:
    found = code_risk(code)
    if found is not None:
        return found[1].why
    danger = risk(code.replace("\n", "; "))
    if danger.severity == "critical" and danger.why.startswith(("downloads", "sends")):
        return danger.why
    return None


#: build scripts the IDE or language server runs when the project is opened, and the package manager on install:
#: (runs, fetches) per language
_GRADLE = (
    re.compile(
        r"\.execute\s*\(|Runtime\.getRuntime\(\)\.exec|\bProcessBuilder\b|\bcommandLine\b|\bexec\s*\{|"
        r"\bevaluate\s*\(|GroovyShell"
    ),
    # a fetch in code, not a repository URL (`maven { url 'https://...' }` is every build)
    re.compile(r"\b(?:curl|wget)\b|\bURL\s*\(|\.toURL\(\)|\.openStream\(|\bURI\.create\b|\bHttpClient\b"),
)
_RUST = (
    # a shell or an interpreter started by the build script (`tar`, `cc`, `cmake` are what -sys crates run)
    re.compile(r"\bCommand::new\s*\(\s*\"(?:sh|bash|zsh|dash|cmd|powershell|pwsh|python3?|node|perl|ruby)(?:\.exe)?\""),
    re.compile(r"\b(?:curl|wget|reqwest|ureq|TcpStream)\b|https?://"),
)
_RUBY = (
    re.compile(
        r"(?<![\w.])(?:system|exec|spawn|eval|instance_eval|load)\s*[\(\s'\"]|`[^`]*`|%x[\(\{\[]|IO\.popen|Open3\."
    ),
    # a fetch in code, not a gem source (`source "https://rubygems.org"`)
    re.compile(r"\b(?:curl|wget)\b|Net::HTTP|URI\.open|URI\.parse|open-uri|\bopen\s*\(\s*['\"]https?:"),
)
#: Gradle scripts applied from a URL (`apply from: 'https://...'`): code from that host runs at configuration
_REMOTE_APPLY = re.compile(r"\bapply\s*\(?\s*from\s*[:=]\s*['\"]https?://", re.I)
_WHEN = {
    "gradle": "IntelliJ and Android Studio run it when they import (open) the project, and every `./gradlew` does",
    "rust": "rust-analyzer runs build scripts when the project is opened, as `cargo build` and `cargo check` do",
    "ruby": "Bundler evaluates it on every `bundle install` (Ruby LSP does when the project is opened)",
}


def check_build_script(src: ScanFile) -> list[Finding]:
    """`build.gradle(.kts)`, `settings.gradle(.kts)`, `build.rs`, `Gemfile`, `*.gemspec`: a line that downloads and
    runs code, code that runs what it fetches, a Gradle script applied from a URL (high, OWS-TOOL-001)."""
    name = src.rel.rsplit("/", 1)[-1].lower()
    kind = "gradle" if "gradle" in name else "rust" if name == "build.rs" else "ruby"
    found = dangerous_line(src.text)
    if found is not None:
        number, why = found[0], found[1].why
    else:
        remote = _REMOTE_APPLY.search(src.text) if kind == "gradle" else None
        if remote is not None:
            number, why = src.text.count("\n", 0, remote.start()) + 1, "applies a script fetched from a URL"
        else:
            runs, fetches = {"gradle": _GRADLE, "rust": _RUST, "ruby": _RUBY}[kind]
            payload = windowed_payload(src.text, runs, fetches)
            if payload is None:
                return []
            number, why = payload
    message = f"{_WHEN[kind]}: line {number} {why}"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-TOOL-001", src.rel, number, message, executes=line)]
