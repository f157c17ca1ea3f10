"""What a config's command runs when it names something of the repository: a script (`bash ./scripts/start.sh`,
`node server.js`, `$CLAUDE_PROJECT_DIR/.claude/hooks/setup.sh`), a Makefile target (`make mcp`, the default target
for a bare `make`) or a package.json script (`npm run serve`). Such a command is a local program by its own words
(low for an MCP server, high for a hook); what decides is the text it runs, so that text is read and each of its
lines judged by `commands.risk`: a line that downloads and runs code or sends credentials makes the command
critical, as if it were written in the config. `setup.py` (run by `pip install .`, which agents run) is read the
same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from owstack.security.config_scan.commands import Risk, argv, risk
from owstack.security.config_scan.common import ScanFile
from owstack.security.findings import Finding, finding

MAX_SCRIPT_BYTES = 1_000_000
_SCRIPT = re.compile(r"\.(?:sh|bash|zsh|py|js|mjs|cjs|ts|ps1|bat|cmd|rb|pl)$", re.I)
_PROJECT_VARS = re.compile(
    r"^(?:\$\{?(?:CLAUDE_PROJECT_DIR|PWD|GEMINI_PROJECT_DIR|CURSOR_PROJECT_DIR)\}?|\$\{(?:workspaceFolder|workspaceRoot)\})[/\\]"
)


def root_of(src: ScanFile) -> Path:
    """The scan root: the folder `src.rel` is relative to."""
    path = src.path.absolute()
    for _ in range(len(PurePosixPath(src.rel).parts)):
        path = path.parent
    return path


def dangerous_line(text: str) -> tuple[int, Risk] | None:
    """The first line of a script that downloads and runs code or sends credentials, with its risk."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        found = risk(stripped)
        if found.severity == "critical" and found.why.startswith(("downloads", "sends")):
            return number, found
    return None


def local_risk(src: ScanFile, command: Any, args: Any = None) -> Risk | None:
    """The risk of what a command runs from the repository (see the module docstring), or None."""
    words = argv(command, args)
    if not words:
        return None
    root = root_of(src)
    here = src.path.absolute().parent
    program = PurePosixPath(words[0].replace("\\", "/")).name.lower()
    if program in ("make", "gmake"):
        return _make(root, here, words[1:])
    if program in ("npm", "pnpm", "yarn", "bun") and len(words) > 1:
        name = words[2] if words[1] in ("run", "run-script") and len(words) > 2 else words[1]
        if not _SCRIPT.search(name):  # `bun run scripts/x.ts` runs a file, read below
            return _package_script(root, here, program, name)
    if program in ("source", ".", "source_env", "source_up") and len(words) > 1 and not words[1].startswith("/"):
        words = [words[0], words[1] if "/" in words[1] or "." in words[1] else f"./{words[1]}", *words[2:]]
    for word in words[:5]:
        path = _PROJECT_VARS.sub("", word)
        sourced = program in ("source", ".", "source_env") and word is words[1]
        if not (_SCRIPT.search(path) or path.startswith(("./", ".\\")) or sourced) or path.startswith(("/", "~", "$")):
            continue
        text = _read(root, (root, here, here.parent), path)
        if text is not None:
            found = dangerous_line(text)
            if found is not None:
                return Risk("critical", f"it runs {word}, whose line {found[0]} {found[1].why}")
            return None
    return None


def _read(root: Path, bases: tuple[Path, ...], rel: str) -> str | None:
    for base in bases:
        try:
            path = (base / rel.replace("\\", "/")).resolve()
            path.relative_to(root.resolve())
            if path.is_file() and path.stat().st_size <= MAX_SCRIPT_BYTES:
                return path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            continue
    return None


def _make(root: Path, here: Path, rest: list[str]) -> Risk | None:
    folder, targets, skip = "", [], False
    for i, word in enumerate(rest):
        if skip:
            skip = False
            continue
        if word in ("-C", "--directory", "-f", "--file"):
            if word in ("-C", "--directory") and i + 1 < len(rest):
                folder = rest[i + 1]
            skip = True
        elif not word.startswith("-") and "=" not in word:
            targets.append(word)
    for name in ("GNUmakefile", "makefile", "Makefile"):
        text = _read(root, (root / folder, here / folder), name)
        if text is not None:
            break
    else:
        return None
    recipes = _recipes(text)
    wanted = targets or ([next(iter(recipes))] if recipes else [])
    seen: set[str] = set()
    while wanted:
        target = wanted.pop()
        if target in seen or target not in recipes:
            continue
        seen.add(target)
        deps, lines = recipes[target]
        found = dangerous_line("\n".join(line.lstrip("@-+ \t") for line in lines))
        if found is not None:
            return Risk("critical", f"make {target}: a recipe line {found[1].why}")
        wanted += deps
    return None


_TARGET = re.compile(r"^([A-Za-z0-9_./-]+(?:\s+[A-Za-z0-9_./-]+)*)\s*::?(?!=)\s*([^;#]*)")


def _recipes(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines), in file order (the first is make's default; `.PHONY` and the like
    are skipped)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.startswith("\t"):
            for target in current:
                out[target][1].append(line.strip())
            continue
        m = _TARGET.match(line)
        if m is None:
            if line.strip() and not line.startswith("#"):
                current = []
            continue
        current = [t for t in m.group(1).split() if not t.startswith(".")]
        for target in current:
            out.setdefault(target, ([], []))[0].extend(m.group(2).split())
    return out


def _package_script(root: Path, here: Path, program: str, name: str) -> Risk | None:
    text = _read(root, (root, here, here.parent), "package.json")
    try:
        scripts = json.loads(text).get("scripts") if text else None
    except (ValueError, AttributeError):
        return None
    script = scripts.get(name) if isinstance(scripts, dict) else None
    if not isinstance(script, str):
        return None
    found = risk(script)
    if found.severity == "critical":
        return Risk("critical", f"{program} runs the package.json script {name!r}, which {found.why}")
    return None


def check_setup_py(src: ScanFile) -> list[Finding]:
    """`setup.py`: `pip install .` (or `-e .`) runs it; a line of it that downloads and runs code, or sends
    credentials, runs then (high, as an npm install script's: OWS-PKG-001)."""
    found = dangerous_line(src.text)
    if found is None:
        return []
    number, danger = found
    message = f"setup.py runs on `pip install .` in the checkout: {danger.why}"
    line = src.text.splitlines()[number - 1].strip()[:200]
    return [finding("OWS-PKG-001", src.rel, number, message, executes=line)]
