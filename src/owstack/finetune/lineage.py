"""The lineage record of a run (`lineage.json`): what was trained from what, where, by whom, with what result.

It holds no training content: the base model's digest, each data source's SHA-256 and row counts (for
audit data, a digest of the event ids and entry hashes it read, so the chain can be checked against it),
the resolved recipe and its digest, code and library versions, metrics, artifact digests, where the
compute ran and where the adapter may be served, and the operating-system user who ran it. `owstack bom`
and `owstack docs annex-iv` read it (EU AI Act Art. 10: data governance; Art. 11 and Annex IV:
technical documentation).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from owstack import __version__

SCHEMA = "owstack.finetune.lineage/1"
FILE = "lineage.json"
LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "gguf")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit() -> str | None:
    """The commit of the running owstack source, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def code_versions() -> dict[str, Any]:
    libs: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libs[name] = None
    return {"owstack": __version__, "git_commit": git_commit(), "python": platform.python_version(), "libraries": libs}


def recipe_digest(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write(run: Path, record: dict[str, Any]) -> Path:
    path = run / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, **record}, indent=2) + "\n", "utf-8")
    tmp.replace(path)
    return path


def read(path: Path) -> dict[str, Any]:
    """A lineage record from a run folder or the file itself; ValueError when it is not one."""
    file = path / FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file}: not a readable lineage record ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{file}: not an owstack lineage record (schema {SCHEMA})")
    return data
