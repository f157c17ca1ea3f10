"""Find agent configuration that executes code or bypasses trust: `scan_path(path) -> list[Finding]`.

Files are recognised by name wherever they sit in the tree (nested projects included): Claude Code
project settings, MCP client configs, VS Code tasks/settings/workspaces, dev containers, agent instruction
files, chat templates, Langflow flows and Langflow version pins. Files that cannot be read, are binary,
too large or malformed are reported (rule OWS-SCAN-001) and skipped; a scan never stops on one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from owstack.security.config_scan import claude, mcp, textfiles, vscode
from owstack.security.config_scan.common import ScanFile
from owstack.security.findings import Finding, finding, sort_key
from owstack.security.jsonc import JSONCError, parse

MAX_FILE_BYTES = 5 * 1024 * 1024
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "site-packages",
        ".cache",
    }
)
MCP_NAMES = frozenset({".mcp.json", "mcp.json", "mcp_config.json", "claude_desktop_config.json"})
INSTRUCTION_NAMES = frozenset(
    {
        "agents.md",
        "agent.md",
        "claude.md",
        "claude.local.md",
        "gemini.md",
        ".cursorrules",
        ".windsurfrules",
        ".clinerules",
        "copilot-instructions.md",
        "skill.md",
        "conventions.md",
        ".github/copilot-instructions.md",
    }
)
INSTRUCTION_DIRS = (
    ".cursor/rules",
    ".claude/commands",
    ".claude/agents",
    ".clinerules",
    ".roo/rules",
    ".kiro/steering",
    ".continue/rules",
    ".windsurf/rules",
    ".github/instructions",
    ".github/prompts",
    ".junie",
)
TEMPLATE_NAMES = frozenset({"tokenizer_config.json", "chat_template.json", "chat_template.jinja"})

Checker = Callable[[ScanFile], list[Finding]]


def classify(rel: str) -> tuple[str, bool] | None:
    """(kind, is_json) of a repository path, or None if no checker applies."""
    p = rel.lower()
    name, parent = p.rsplit("/", 1)[-1], p.rsplit("/", 2)[-2] if "/" in p else ""
    if parent == ".claude" and name in ("settings.json", "settings.local.json"):
        return "claude", True
    if name in MCP_NAMES or p.endswith(".gemini/settings.json"):
        return "mcp", True
    if p.endswith(".vscode/tasks.json"):
        return "tasks", True
    if p.endswith(".vscode/settings.json"):
        return "settings", True
    if name.endswith(".code-workspace"):
        return "workspace", True
    if name in (".devcontainer.json", "devcontainer.json") and (name.startswith(".") or "/.devcontainer" in "/" + p):
        return "devcontainer", True
    if (
        name in INSTRUCTION_NAMES
        or name.endswith((".instructions.md", ".prompt.md", ".mdc"))
        or any(("/" + p).startswith("/" + d + "/") or f"/{d}/" in "/" + p for d in INSTRUCTION_DIRS)
    ):
        return "instructions", False
    if name in TEMPLATE_NAMES:
        return "template", name.endswith(".json")
    if (
        (name.startswith("requirements") and name.endswith((".txt", ".in")))
        or name in ("pyproject.toml", "pipfile", "setup.cfg")
        or (name.startswith(("docker-compose", "compose")) and name.endswith((".yml", ".yaml")))
    ):
        return "pins", False
    if name.endswith(".json"):
        return "flow?", True
    return None


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file() or root.is_symlink():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def scan_path(path: str | os.PathLike[str]) -> list[Finding]:
    """Scan a repository folder (or one file); return findings sorted by severity, then file and line.

    Raises `FileNotFoundError` if `path` does not exist. Every finding carries its rule id, severity,
    file (relative to `path`, POSIX separators), line, what would execute, advisories and fix.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise FileNotFoundError(f"{path}: no such file or folder")
    out: list[Finding] = []
    for file in _walk(root):
        if file == root:  # a single file: classify it by its real location, report it as given
            rel = root.as_posix()
            kind = classify("/".join(root.resolve().parts[-3:]))
        else:
            rel = file.relative_to(root).as_posix()
            kind = classify(rel)
        if kind is not None:
            out += _scan_file(file, rel, kind[0], kind[1])
    return sorted(out, key=sort_key)


def _read(file: Path, rel: str, kind: str) -> str | Finding:
    def skipped(why: str) -> Finding:
        return finding("OWS-SCAN-001", rel, 1, f"skipped: {why}")

    if file.is_symlink():
        return skipped("symbolic link (not followed)")
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return skipped(f"file of {size} bytes is larger than {MAX_FILE_BYTES}")
        data = file.read_bytes()
    except OSError as exc:
        return skipped(f"unreadable ({exc.strerror or exc})")
    if b"\x00" in data[:8192]:
        return skipped("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return skipped(f"not UTF-8 text (byte {exc.start})")


def _scan_file(file: Path, rel: str, kind: str, is_json: bool) -> list[Finding]:
    if kind == "flow?" and (file.is_symlink() or not _may_be_flow(file)):
        return []
    text = _read(file, rel, kind)
    if isinstance(text, Finding):
        return [text]
    src = ScanFile(rel, file, text)
    if is_json:
        try:
            src = ScanFile(rel, file, text, parse(text))
        except JSONCError as exc:
            if kind == "flow?":
                return []
            return [finding("OWS-SCAN-001", rel, exc.line, f"skipped: malformed JSON ({exc})")]
    return _CHECKERS[kind](src)


def _may_be_flow(file: Path) -> bool:
    """Cheap filter before parsing an arbitrary .json file as a Langflow flow."""
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            return False
        with file.open("rb") as fh:
            head = fh.read(MAX_FILE_BYTES)
    except OSError:
        return False
    return b'"nodes"' in head and b'"code"' in head and b'"template"' in head


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


_CHECKERS: dict[str, Checker] = {
    "claude": _claude,
    "mcp": mcp.check,
    "tasks": vscode.check_tasks,
    "settings": vscode.check_settings,
    "workspace": lambda src: vscode.check_settings(src, ("settings",)) + vscode.check_tasks(src, ("tasks",)),
    "devcontainer": vscode.check_devcontainer,
    "instructions": textfiles.check_instructions,
    "template": textfiles.check_template_file,
    "pins": textfiles.check_langflow_pins,
    "flow?": textfiles.check_langflow,
}
