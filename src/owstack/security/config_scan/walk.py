"""Walk a repository as an agent or editor sees it: symbolic links are followed while they stay inside
the repository (a `.vscode` that is a link to `configs/vscode` is still VS Code's folder), and a link
that leaves it is reported, never read (`.vscode -> ~/.vscode`, `CLAUDE.md -> ~/.aws/credentials`).
A link into a `.git` folder is reported and not followed (checked-out files written through it land in
git's own hooks: CVE-2024-32002). Of a `.git` folder only `config` is read: git runs the programs it
names (`core.fsmonitor` on every `git status` an editor or a shell prompt runs).
Loops are cut by remembering the real folders already walked. `exclude` takes glob patterns matched
against repository-relative paths (`vendor/**`, `tests/fixtures`, `*.min.json`)."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from owstack.security.config_scan.classify import SKIP_DIRS

MAX_ENTRIES = 2_000_000


@dataclass(frozen=True, slots=True)
class Entry:
    """A file to check (`escape` None), a link that leaves the repository (`escape` its target), or a link into
    a `.git` folder (`escape` its target, `into_git` True)."""

    path: Path
    rel: str
    escape: str | None = None
    is_dir: bool = False
    into_git: bool = False
    truncated: bool = False  # the walk stopped at MAX_ENTRIES: `rel` is where


def excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        p = pattern.strip().rstrip("/")
        if not p:
            continue
        if any(fnmatch.fnmatchcase(candidate, p) for candidate in prefixes):
            return True
        if p.endswith("/**") and any(candidate == p[:-3] for candidate in prefixes):
            return True
        if "/" not in p and any(fnmatch.fnmatchcase(part, p) for part in parts):
            return True
    return False


def _shown(name: str) -> str:
    """A file name as reports can print it: bytes that are not UTF-8 (kept by the OS as lone surrogates, which no
    UTF-8 output, JSON or SARIF included, can encode) written as `\\xff` escapes. Only the shown path changes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _into_git(target: str, real: str, root_real: str) -> bool:
    """A link whose target names a `.git` folder (any case: `.GIT` is the same folder on macOS and Windows)."""
    parts = re.split(r"[/\\]", target) + os.path.relpath(real, root_real).split(os.sep)
    return any(p.lower() == ".git" for p in parts)


def _git_hooks(git_dir: str, rel: str) -> Iterator[Entry]:
    """The hooks of a `.git` folder handed over with the checkout (an archive, a shared folder): git runs them on
    commit, checkout and merge. The `.sample` files git installs run nothing."""
    hooks = os.path.join(git_dir, "hooks")
    try:
        names = sorted(os.listdir(hooks)) if not os.path.islink(hooks) else []
    except OSError:
        return
    for name in names:
        path = os.path.join(hooks, name)
        if not name.endswith(".sample") and os.path.isfile(path) and not os.path.islink(path):
            yield Entry(Path(path), f"{rel}/hooks/{name}")


def walk(root: Path, exclude: tuple[str, ...] = ()) -> Iterator[Entry]:
    """Every file under `root` (sorted per folder), links followed inside the repository."""
    root_real = os.path.realpath(root)
    visited = {root_real}
    stack: list[tuple[str, str]] = [(str(root), "")]
    count = 0
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            count += 1
            if count > MAX_ENTRIES:  # said, not silent: padding a tree with files must not hide the rest
                yield Entry(Path(folder), prefix.rstrip("/") or ".", truncated=True)
                return
            rel = f"{prefix}{_shown(entry.name)}"
            if excluded(rel, exclude):
                continue
            link = entry.is_symlink()
            real = os.path.realpath(entry.path) if link else entry.path
            if link and not _inside(real, root_real):
                target = _shown(os.readlink(entry.path))
                yield Entry(Path(entry.path), rel, escape=target, is_dir=os.path.isdir(entry.path))
                continue
            if link and _into_git(os.readlink(entry.path), real, root_real):
                target = _shown(os.readlink(entry.path))
                yield Entry(Path(entry.path), rel, escape=target, is_dir=os.path.isdir(entry.path), into_git=True)
                continue
            try:
                is_dir = entry.is_dir()  # follows an inside link
            except OSError:
                continue
            if is_dir:
                if entry.name == ".git" and os.path.isfile(os.path.join(entry.path, "config")) and not link:
                    yield Entry(Path(entry.path) / "config", rel + "/config")
                    yield from _git_hooks(entry.path, rel)
                if entry.name in SKIP_DIRS:
                    continue
                real_dir = os.path.realpath(entry.path)
                if real_dir in visited:
                    continue
                visited.add(real_dir)
                stack.append((entry.path, rel + "/"))
            elif os.path.isfile(entry.path):
                yield Entry(Path(entry.path), rel)
