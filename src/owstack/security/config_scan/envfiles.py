"""Environment files tools load from a checkout: `.env` and direnv's `.envrc`.

`.env` (also `.gemini/.env`, `.qwen/.env`) is read at start by Gemini CLI and Qwen Code (from the working
folder up), by aider (from the repository root; every option is an `AIDER_*` variable) and by Codex CLI before
0.23.0; VS Code's Python extension passes it to runs, tests and debugging. Its variables then reach the agent
and every process it starts, unasked:

- a model or cloud base URL, or a proxy, at an address off this machine that is no known provider: the user's
  key goes with the requests (critical, as CVE-2026-21852 in Claude Code settings);
- a variable that loads code into every process (`NODE_OPTIONS=--require ./x.js`, a `PYTHONPATH` folder
  holding a `sitecustomize.py`: critical; `LD_PRELOAD`,
  `BASH_ENV`, `PYTHONSTARTUP`: high) or names a program the repository ships (`GIT_SSH_COMMAND=./x`: high);
- aider's `AIDER_LINT_CMD`/`AIDER_TEST_CMD` (run after every edit), Gemini CLI's `GEMINI_SYSTEM_MD` (the
  system prompt replaced by a file) and `GEMINI_CLI_TRUST_WORKSPACE` (the folder-trust check skipped);
- TLS verification off (medium).

Variables that move an agent's home (`CODEX_HOME`, `GEMINI_CLI_HOME`) are OWS-CX-001 (`codex.check_dotenv`).
Templates (`.env.example`, `.env.sample`, ...) are read by nothing but people and get only that check.

mise's project config (`mise.toml`: `[hooks]`, `[env]`) is judged the same way once trusted.

`.envrc` is a shell script direnv runs in the user's shell on every `cd` into the folder once it has been
allowed (`direnv allow`, asked again after every change): an explicit step, so its findings stop at high —
download-and-run lines, `use flake` of a remote flake not pinned to a revision (its shellHook runs), code-loading
variables; redirects of model traffic are medium.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import PurePosixPath

from owstack.security.config_scan import codex
from owstack.security.config_scan.commands import risk
from owstack.security.config_scan.common import (
    ScanFile,
    command_line,
    destination,
    env_data,
    env_risk,
    index_variable,
)
from owstack.security.config_scan.scripts import local_risk
from owstack.security.config_scan.vscode import program_severity
from owstack.security.findings import Finding, Severity, finding

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")
_LOADED = (".env",)
_FETCH = re.compile(r"\b(?:curl|wget|iwr|irm|invoke-webrequest|invoke-restmethod|fetch)\b|https?://", re.I)
_REMOTE_FLAKE = re.compile(r"^\s*use\s+flake\s+['\"]?((?:github|gitlab|sourcehut|git\+\w+|https?|tarball\+\w+):\S+)")
_PINNED_FLAKE = re.compile(r"[?&]rev=[0-9a-f]{40}|/[0-9a-f]{40}(?:[?#]|$)|[?&]narHash=")


def check_dotenv(src: ScanFile) -> list[Finding]:
    out = codex.check_dotenv(src)
    if src.rel.lower().rsplit("/", 1)[-1] not in _LOADED:
        return out
    for number, text in enumerate(src.text.splitlines(), start=1):
        m = _ENV_LINE.match(text)
        if m is None:
            continue
        key, value = m.group("key"), _unquote(m.group("value"))
        judged = _judge(src, key, value, in_envrc=False)
        if judged is not None:
            severity, why = judged
            message = f"`{key}` in an env file agents load: {why}"
            out.append(
                finding("OWS-ENV-001", src.rel, number, message, executes=f"{key}={value}"[:200], severity=severity)
            )
    return out


def check_envrc(src: ScanFile) -> list[Finding]:
    out: list[Finding] = []
    for number, text in enumerate(_logical_lines(src.text), start=1):
        line = text.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        judged = _judge(src, m.group("key"), _unquote(m.group("value")), in_envrc=True) if m else None
        if judged is None:
            judged = _command(line)
        if judged is None and (local := local_risk(src, line)) is not None:
            judged = "high", local.why
        if judged is not None:
            severity, why = judged
            message = f"direnv runs this in your shell on every `cd` once allowed: {why}"
            out.append(finding("OWS-ENV-002", src.rel, number, message, executes=command_line(line), severity=severity))
    return out


def check_mise(src: ScanFile) -> list[Finding]:
    """mise's project config (`mise.toml`, `.mise.toml`, `.config/mise.toml`, `mise/config.toml`): `[hooks]` run
    in the user's shell on `cd` and around installs, `[env]` is exported into it, once the file is trusted
    (`mise trust`): judged as `.envrc` lines are (OWS-ENV-002)."""
    try:
        data = tomllib.loads(src.text)
    except tomllib.TOMLDecodeError as exc:
        return [finding("OWS-SCAN-001", src.rel, 1, f"skipped: malformed TOML ({exc})")]
    out: list[Finding] = []
    hooks = data.get("hooks")
    for event, value in hooks.items() if isinstance(hooks, dict) else []:
        for item in value if isinstance(value, list) else [value]:
            script = item.get("script") if isinstance(item, dict) else item
            judged = _command(script) if isinstance(script, str) else None
            if judged is not None:
                message = f"mise runs the `{event}` hook in your shell once the file is trusted: {judged[1]}"
                line = src.line("hooks", event)
                out.append(
                    finding("OWS-ENV-002", src.rel, line, message, executes=command_line(script), severity=judged[0])
                )
    env = data.get("env")
    for key, value in env.items() if isinstance(env, dict) else []:
        judged = _judge(src, key, str(value), in_envrc=True) if isinstance(value, str | int) else None
        if judged is not None:
            message = f"mise exports `{key}` into your shell once the file is trusted: {judged[1]}"
            line = src.line("env", key)
            out.append(finding("OWS-ENV-002", src.rel, line, message, executes=f"{key}={value}", severity=judged[0]))
    return out


def _command(line: str) -> tuple[Severity, str] | None:
    flake = _REMOTE_FLAKE.match(line)
    if flake is not None and not _PINNED_FLAKE.search(flake.group(1)):
        return "high", f"the shell hook of the remote flake {flake.group(1)} runs, at whatever revision is current"
    danger = risk(line)
    if danger.severity == "critical" and _FETCH.search(line):
        return "high", danger.why
    return None


def _judge(src: ScanFile, key: str, value: str, *, in_envrc: bool) -> tuple[Severity, str] | None:
    """(severity, why) of one variable in an env file, or None when it is ordinary."""
    data = env_data()
    upper = key.upper()
    if upper in codex.agent_homes():
        return None  # OWS-CX-001
    if upper in {str(v).upper() for v in data["agent_switches"]} and value.strip() not in ("", "0", "false"):
        return "high", "it changes how the agent trusts the folder or what its system prompt says"
    if upper in {str(v).upper() for v in data["agent_commands"]} and value.strip():
        danger = risk(value)
        if danger.severity == "critical":
            return "critical", f"aider runs it after every edit: {danger.why}"
        words = _split(value)
        if words and ("/" in words[0] or words[0].startswith(".")):
            return "high", "aider runs a program the repository ships after every edit"
        return "low", "aider runs it after every edit"
    if upper == "PYTHONPATH":
        hook = _startup_module(src, value)
        if hook is not None:
            return ("high" if in_envrc else "critical"), f"every Python process imports {hook} from the repository"
    index = index_variable(key, value)
    if index is not None:  # pip, uv or npm install from it when the agent or the developer next installs
        return index[0], f"every pip, uv or npm install run with it: {index[1]}"
    found = env_risk(key, value)
    if found is None:
        return None
    if found.kind == "redirect":
        if found.severity != "critical" or destination(value) != "elsewhere":
            return None
        return ("medium" if in_envrc else "critical"), found.message + " (off this machine, no known provider)"
    if found.kind == "tls":
        return "medium", found.message
    if found.severity == "critical":
        return "high" if in_envrc else "critical", found.message
    if upper in {str(v).upper() for v in data["preload"]} and value.strip():
        return "high", found.message
    if upper in {str(v).upper() for v in data["program"]} and value.strip():
        severity, why = program_severity(src, value)
        if severity in ("critical", "high"):
            return "high", f"`{key}` makes git, ssh or the build run {why}"
    return None


def _startup_module(src: ScanFile, value: str) -> str | None:
    """A `sitecustomize.py`/`usercustomize.py` in a repository folder on PYTHONPATH: Python imports it at the
    start of every process (the `site` module), before any code of the program runs."""
    here = src.path.absolute().parent
    cwd = here.parent if here.name in (".gemini", ".qwen") else here  # the folder the tool runs in
    for entry in value.replace("${PWD}", ".").replace("$PWD", ".").split(":"):
        folder = entry.strip()
        if not folder or folder.startswith(("/", "~", "$")):
            continue
        for name in ("sitecustomize.py", "usercustomize.py"):
            if (cwd / folder / name).is_file():
                return f"{(PurePosixPath(folder) / name).as_posix()!r}"
    return None


def _unquote(value: str) -> str:
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return re.sub(r"\s+#.*$", "", text)


def _split(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _logical_lines(text: str) -> list[str]:
    """Lines with `\\` continuations joined onto their first line, the lines they swallowed left empty, so that
    a list index + 1 is still a line number."""
    out: list[str] = []
    start = -1
    for line in text.splitlines():
        if start >= 0:
            out[start] += " " + line.removesuffix("\\")
            out.append("")
        else:
            out.append(line.removesuffix("\\"))
        start = (start if start >= 0 else len(out) - 1) if line.endswith("\\") else -1
    return out


_NIX_HOOK = re.compile(r"\b(shellHook|enterShell)\s*=\s*''(.*?)''", re.S)


def check_nix_shell(src: ScanFile) -> list[Finding]:
    """`flake.nix`, `shell.nix`, `devenv.nix` (`shellHook`, `enterShell`) and `devbox.json` (`shell.init_hook`): run
    in your shell when the environment is entered (`nix develop`, `devenv shell`, `devbox shell`, or direnv's
    `use flake`/`use devenv` on every `cd`): a line that downloads and runs code is high (OWS-ENV-002, as in .envrc)."""
    blocks: list[tuple[int, str]] = []
    if src.rel.lower().endswith(".json"):
        data = src.doc.value if src.doc is not None else None
        shell = data.get("shell") if isinstance(data, dict) else None
        hook = shell.get("init_hook") if isinstance(shell, dict) else None
        for item in hook if isinstance(hook, list) else [hook] if isinstance(hook, str) else []:
            if isinstance(item, str):
                blocks.append((src.line("shell", "init_hook"), item))
    else:
        for m in _NIX_HOOK.finditer(src.text):
            blocks.append((src.text.count("\n", 0, m.start(2)) + 1, m.group(2)))
    out: list[Finding] = []
    for first, block in blocks:
        for offset, text in enumerate(block.split("\n")):
            judged = _command(text.strip()) if text.strip() and not text.strip().startswith("#") else None
            if judged is not None:
                message = f"runs in your shell when the environment is entered: {judged[1]}"
                line = first + offset
                out.append(
                    finding(
                        "OWS-ENV-002", src.rel, line, message, executes=command_line(text.strip()), severity=judged[0]
                    )
                )
    return out


def check_pixi(src: ScanFile, data: dict[str, object] | None = None, base: tuple[str, ...] = ()) -> list[Finding]:
    """pixi's `[activation]` (`pixi.toml`, or `[tool.pixi.activation]` of pyproject.toml): `scripts` are sourced
    and `env` exported before every `pixi run` and `pixi shell` (which agents run): a script of the repository that
    downloads and runs code, or a variable that loads code, is high (OWS-ENV-002, as an .envrc line)."""
    if data is None:
        try:
            data = tomllib.loads(src.text)
        except tomllib.TOMLDecodeError:
            return []
    out: list[Finding] = []
    scopes: list[tuple[tuple[str, ...], object]] = [((*base, "activation"), data.get("activation"))]
    targets = data.get("target")
    for name, spec in targets.items() if isinstance(targets, dict) else []:
        if isinstance(spec, dict):
            scopes.append(((*base, "target", str(name), "activation"), spec.get("activation")))
    for at, activation in scopes:
        if not isinstance(activation, dict):
            continue
        scripts = activation.get("scripts")
        for script in scripts if isinstance(scripts, list) else []:
            danger = local_risk(src, ["source", str(script)]) if isinstance(script, str) else None
            if danger is not None and danger.severity == "critical":
                message = f"pixi sources {script!r} before every `pixi run` and `pixi shell`: {danger.why}"
                out.append(
                    finding(
                        "OWS-ENV-002", src.rel, src.line(*at, "scripts"), message, executes=str(script), severity="high"
                    )
                )
        env = activation.get("env")
        for key, value in env.items() if isinstance(env, dict) else []:
            judged = _judge(src, str(key), str(value), in_envrc=True)
            if judged is not None and judged[0] in ("high", "critical"):
                message = f"pixi exports `{key}` before every `pixi run` and `pixi shell`: {judged[1]}"
                line = src.line(*at, "env", str(key))
                out.append(
                    finding("OWS-ENV-002", src.rel, line, message, executes=f"{key}={value}", severity=judged[0])
                )
    return out
