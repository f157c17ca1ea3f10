"""Find agent configuration that executes code or bypasses trust: `scan_path(path) -> list[Finding]`.

Files are recognised by name wherever they sit in the tree (nested projects included, `classify`):
Claude Code project settings, MCP client configs (Claude Code, Cursor, VS Code, Gemini CLI, Qwen Code,
Windsurf, Amazon Q, Roo, Kiro, Continue, Zed, opencode, Crush, Codex CLI), Codex CLI's project config,
agent hooks (Cursor, Windsurf, Kiro, Gemini CLI, Qwen Code, Codex `notify`, Amazon Q / Kiro CLI agents),
shell grants (Gemini CLI, Cursor CLI, Crush), aider's config, Zed's language servers and shell, opencode's
plugins, formatters and providers, VS Code tasks/settings/workspaces, JetBrains startup tasks, dev
containers (and their features) and Cursor's background-agent environment, OpenHands' setup script, Cline's hook
scripts, editors' project configs (Helix, Neovim/Vim `exrc`, lazy.nvim, Emacs directory variables), `conftest.py`
(pytest, and VS Code's test discovery on open), env files (`.env`, direnv's `.envrc`, mise's `[hooks]`/`[env]`),
package-manager files (`.pnpmfile.cjs`; registries and indexes of `.npmrc`, `.yarnrc*`, `uv.toml`) and pre-commit
files, agent instruction files, chat templates, Langflow
flows and Langflow version pins; git's own files (`.git/config` and bare repositories in the tree,
`.gitmodules`, `.lfsconfig`, links into `.git`). Symbolic links are followed inside the repository and
reported when they leave it (`walk`); files past the size limit are searched in a stream rather than
skipped (`reading`); unreadable, binary or malformed files are reported (OWS-SCAN-001). A scan never stops on one file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from owstack.security.config_scan import (
    claude,
    codex,
    devcontainer,
    editors,
    envfiles,
    git,
    hooks,
    jetbrains,
    langflow,
    maven,
    mcp,
    opencode,
    packages,
    permissions,
    php,
    reading,
    scripts,
    testing,
    textfiles,
    toolconfigs,
    vscode,
    zed,
)
from owstack.security.config_scan.classify import MAX_FILE_BYTES, classify
from owstack.security.config_scan.common import ScanFile
from owstack.security.config_scan.walk import Entry, walk
from owstack.security.findings import Finding, finding, sort_key
from owstack.security.jsonc import JSONCError, parse

__all__ = ["MAX_FILE_BYTES", "classify", "scan_path"]

Checker = Callable[[ScanFile], list[Finding]]
_CONFIG_DIRS = (
    ".vscode",
    ".claude",
    ".cursor",
    ".devcontainer",
    ".github",
    ".gemini",
    ".roo",
    ".kiro",
    ".codex",
    ".helix",
    ".clinerules",
    ".cline",
    ".openhands",
)


def scan_path(path: str | os.PathLike[str], exclude: tuple[str, ...] = ()) -> list[Finding]:
    """Scan a repository folder (or one file); return findings sorted by severity, then file and line.

    Raises `FileNotFoundError` if `path` does not exist. Every finding carries its rule id, severity,
    file (relative to `path`, POSIX separators), line, what would execute, advisories and fix.
    `exclude` holds glob patterns of repository paths to leave out.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if root.is_file():
        kind = classify("/".join(root.resolve().parts[-3:]))
        found = _scan_file(root, root.as_posix(), kind[0], kind[1]) if kind else []
        return sorted(found, key=sort_key)
    out: list[Finding] = []
    for entry in walk(root, exclude):
        if entry.truncated:
            message = (
                f"the walk stopped at its limit of entries, in {entry.rel!r}: the rest of the tree was not scanned "
                "(a tree padded with files hides what comes after; scan the folders that matter on their own)"
            )
            out.append(finding("OWS-SCAN-001", entry.rel, 1, message, severity="medium"))
            continue
        if entry.into_git:
            out.append(_into_git(entry))
            continue
        if entry.escape is not None:
            out.append(_escape(entry))
            continue
        kind = classify(entry.rel)
        if kind is not None:
            out += _scan_file(entry.path, entry.rel, kind[0], kind[1])
    return sorted(out, key=sort_key)


def _escape(entry: Entry) -> Finding:
    config = classify(entry.rel) is not None or entry.rel.split("/")[-1].lower() in _CONFIG_DIRS
    what = "folder" if entry.is_dir else "file"
    return finding(
        "OWS-SCAN-002",
        entry.rel,
        1,
        f"symbolic link to a {what} outside the repository ({entry.escape}): agents and editors read it as "
        "part of the project; not followed",
        executes=entry.escape,
        severity="high" if config else "medium",
    )


def _into_git(entry: Entry) -> Finding:
    return finding(
        "OWS-GIT-003",
        entry.rel,
        1,
        f"symbolic link into a .git folder ({entry.escape}): files checked out through it become git's own "
        "(hooks that run on the next checkout); not followed",
        executes=entry.escape,
    )


def _scan_file(file: Path, rel: str, kind: str, is_json: bool) -> list[Finding]:
    if kind == "flow?" and not _may_be(file, (b'"nodes"', b'"code"')):
        return []
    if kind == "pins?" and not _may_be(file, (b"langflow",)):
        return []
    if kind == "gitconfig?" and not git.is_repository(file.parent):
        return []
    if kind == "cgo?" and not _has_cgo(file):
        return []
    try:
        size = file.stat().st_size
    except OSError as exc:
        return [finding("OWS-SCAN-001", rel, 1, f"skipped: unreadable ({exc.strerror or exc})")]
    if size > reading.MAX_PARSE_BYTES:
        return _oversized(file, rel, kind)
    read = reading.read_config(file, rel)
    if isinstance(read, Finding):
        return [read]
    text, read_note = read
    notes = [read_note] if read_note is not None else []
    src = ScanFile(rel, file, text)
    if is_json:
        try:
            src = ScanFile(rel, file, text, parse(text))
        except JSONCError as exc:
            if kind in ("flow?", "package"):
                return []  # not a flow; a package.json npm cannot read runs nothing
            malformed = finding("OWS-SCAN-001", rel, exc.line, f"malformed JSON ({exc}): searched, not parsed")
            return [malformed, *notes, *reading.searched_findings(text, rel, kind.rstrip("?"))]
    found = _CHECKERS[kind.rstrip("?")](src) + notes
    if size > MAX_FILE_BYTES and found:
        note = f"file of {size} bytes, past the usual {MAX_FILE_BYTES}: parsed whole anyway"
        found.append(finding("OWS-SCAN-001", rel, 1, note, severity="medium"))
    return found


def _oversized(file: Path, rel: str, kind: str) -> list[Finding]:
    line_based = (
        "instructions",
        "pins",
        "pins?",
        "dotenv",
        "vim",
        "emacs",
        "conftest",
        "pnpmfile",
        "js-config",
        "build-script",
        "cgo?",
    )
    if kind in line_based:  # line-based checkers: run on each chunk
        out: list[Finding] = []
        checker = _CHECKERS[kind.rstrip("?")]
        for _, first_line, text in reading.chunks(file):
            for f in checker(ScanFile(rel, file, text)):
                out.append(dataclasses.replace(f, line=f.line + first_line - 1))
        return list({(f.rule, f.line, f.message): f for f in out}.values())
    return reading.streamed_findings(file, rel, kind.rstrip("?"))


CGO_PREAMBLE_BYTES = 256 * 1024


def _has_cgo(file: Path) -> bool:
    """Whether a Go file holds a `#cgo` directive: they sit in the comment before `import "C"`, in the file's import
    block, so only its head is read (a Go tree has thousands of files, few of them cgo)."""
    try:
        with file.open("rb") as fh:
            return b"#cgo" in fh.read(CGO_PREAMBLE_BYTES)
    except OSError:
        return False


def _may_be(file: Path, markers: tuple[bytes, ...]) -> bool:
    """Cheap filter before parsing an arbitrary file as a Langflow flow or a deployment manifest."""
    try:
        with file.open("rb") as fh:
            found = set()
            while block := fh.read(reading.CHUNK):
                found |= {m for m in markers if m in block}
                if len(found) == len(markers):
                    return True
    except OSError:
        return False
    return False


def _claude(src: ScanFile) -> list[Finding]:
    project = src.path.parent.parent

    @cache
    def servers() -> dict[str, str]:
        candidate = project / ".mcp.json"
        try:
            return mcp.commands(parse(candidate.read_text(encoding="utf-8")).value)
        except (OSError, UnicodeDecodeError, JSONCError):
            return {}

    return claude.check(src, servers)


def _hook_prompts(src: ScanFile) -> list[Finding]:
    """The prompts a Kiro hook sends the agent by itself (`then: {type: askAgent, prompt: ...}`, on every save of a
    matching file): read as instruction files are (injection phrases, commands that download and run code)."""
    data = src.doc.value if src.doc is not None else None
    then = data.get("then") if isinstance(data, dict) else None
    prompt = then.get("prompt") if isinstance(then, dict) else None
    if not isinstance(prompt, str) or not prompt.strip():
        return []
    base = src.line("then", "prompt")
    found = textfiles.check_instructions(ScanFile(src.rel, src.path, prompt))
    return [dataclasses.replace(f, line=base + f.line - 1) for f in found]


def _python_tools(src: ScanFile) -> list[Finding]:
    """pylint's `init-hook` and `load-plugins`, pytest's `addopts = -p` plugins."""
    return toolconfigs.check_pylint(src) + testing.check_pytest_plugins(src)


_CHECKERS: dict[str, Checker] = {
    "claude": _claude,
    "mcp": mcp.check,
    "opencode": opencode.check_opencode,
    "crush": opencode.check_crush,
    "opencode-plugin": opencode.check_plugin,
    "agent-settings": lambda src: hooks.check_settings(src) + permissions.check_gemini(src),
    "cursor-cli": permissions.check_cursor_cli,
    "q-agent": permissions.check_q_agent,
    "hooks": lambda src: hooks.check(src) + _hook_prompts(src),  # a hooks file: every command and prompt in it
    "mcp-yaml": codex.check_yaml_mcp,
    "codex": codex.check_codex,
    "dotenv": envfiles.check_dotenv,
    "envrc": envfiles.check_envrc,
    "mise": envfiles.check_mise,
    "aider": codex.check_aider,
    "zed": zed.check,
    "tasks": vscode.check_tasks,
    "idea-startup": jetbrains.check_startup,
    "settings": vscode.check_settings,
    "extensions": vscode.check_extensions,
    "workspace": lambda src: (
        vscode.check_settings(src, ("settings",))
        + vscode.check_tasks(src, ("tasks",))
        + vscode.check_extensions(src, ("extensions",))
    ),
    "devcontainer": devcontainer.check_devcontainer,
    "cursor-environment": devcontainer.check_cursor_environment,
    "package": packages.check_package_json,
    "npmrc": packages.check_npmrc,
    "wrapper": packages.check_wrapper,
    "yarnrc": packages.check_yarnrc,
    "pre-commit": packages.check_pre_commit,
    "gitconfig": git.check_config,
    "git-hook": git.check_hook,
    "gitmodules": git.check_gitmodules,
    "lfsconfig": git.check_lfsconfig,
    "instructions": textfiles.check_instructions,
    "template": textfiles.check_template_file,
    "pins": lambda src: (
        langflow.check_langflow_pins(src)
        + (scripts.check_setup_py(src) if src.rel.lower().endswith("setup.py") else [])
        + (packages.check_pyproject_uv(src) if src.rel.lower().endswith("pyproject.toml") else [])
        + (packages.check_pyproject_build(src) if src.rel.lower().endswith("pyproject.toml") else [])
        + (_python_tools(src) if src.rel.lower().endswith(("pyproject.toml", "setup.cfg")) else [])
    ),
    "js-config": toolconfigs.check_js_config,
    "cgo": toolconfigs.check_cgo,
    "php-tool": php.check,
    "maven": maven.check_pom,
    "mvn": maven.check_mvn,
    "python-tool-ini": lambda src: _python_tools(src),
    "build-script": toolconfigs.check_build_script,
    "msbuild": toolconfigs.check_msbuild,
    "build-hook": scripts.check_setup_py,
    "lefthook": packages.check_lefthook,
    "nix-shell": envfiles.check_nix_shell,
    "bunfig": toolconfigs.check_bunfig,
    "cargo": toolconfigs.check_cargo_config,
    "pixi": lambda src: envfiles.check_pixi(src),
    "gitpod": devcontainer.check_gitpod,
    "cline-hook": hooks.check_cline_hook,
    "helix": editors.check_helix,
    "sublime": editors.check_sublime,
    "vim": editors.check_vim,
    "emacs": editors.check_emacs,
    "conftest": testing.check_conftest,
    "pnpmfile": packages.check_pnpmfile,
    "uv": packages.check_uv,
    "aider-models": codex.check_aider_models,
    "openhands": devcontainer.check_openhands,
    "flow": langflow.check_langflow,
}
