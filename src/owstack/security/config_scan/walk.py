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


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def _into_git(target: str, real: str, root_real: str) -> bool:
    """A link whose target names a `.git` folder (any case: `.GIT` is the same folder on macOS and Windows)."""
    parts = re.split(r"[/\\]", target) + os.path.relpath(real, root_real).split(os.sep)
    return any(p.lower() == ".git" for p in parts)


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
            if count > MAX_ENTRIES:
                return
            rel = f"{prefix}{entry.name}"
            if excluded(rel, exclude):
                continue
            link = entry.is_symlink()
            real = os.path.realpath(entry.path) if link else entry.path
            if link and not _inside(real, root_real):
                yield Entry(Path(entry.path), rel, escape=os.readlink(entry.path), is_dir=os.path.isdir(entry.path))
                continue
            if link and _into_git(os.readlink(entry.path), real, root_real):
                target = os.readlink(entry.path)
                yield Entry(Path(entry.path), rel, escape=target, is_dir=os.path.isdir(entry.path), into_git=True)
                continue
            try:
                is_dir = entry.is_dir()  # follows an inside link
            except OSError:
                continue
            if is_dir:
                if entry.name == ".git" and os.path.isfile(os.path.join(entry.path, "config")) and not link:
                    yield Entry(Path(entry.path) / "config", rel + "/config")
                if entry.name in SKIP_DIRS:
                    continue
                real_dir = os.path.realpath(entry.path)
                if real_dir in visited:
                    continue
                visited.add(real_dir)
                stack.append((entry.path, rel + "/"))
            elif os.path.isfile(entry.path):
                yield Entry(Path(entry.path), rel)
