"""Checkpoints that resume exactly, in the transformers Trainer's layout plus the teacher.

    OUT/checkpoints/checkpoint-20/   the Trainer's: student weights, optimizer.pt, scheduler.pt,
                                     rng_state.pth (Python, NumPy, torch), trainer_state.json
                                     and owstack's: teacher.safetensors, opsdc.json (teacher refreshes)

The Trainer writes each checkpoint to a temporary folder and renames it, keeps the two newest
(`save_total_limit`), and restores the RNG states on resume; the teacher (a copy of the student refreshed
every M steps, so not derivable from it) is saved and restored beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FOLDER = "checkpoints"
TEACHER = "teacher.safetensors"
STATE = "opsdc.json"


def folder(out: Path) -> Path:
    return out / FOLDER


def latest(out: Path) -> Path | None:
    """The newest complete checkpoint of a run (one with the teacher saved beside the Trainer's files)."""
    root = folder(out)
    if not root.is_dir():
        return None
    found = [p for p in root.glob("checkpoint-*") if p.is_dir() and (p / STATE).is_file()]
    return max(found, key=lambda p: int(p.name.rsplit("-", 1)[-1]), default=None)


def save_teacher(path: Path, teacher: Any, state: dict[str, Any]) -> None:
    from safetensors.torch import save_model

    save_model(teacher, str(path / TEACHER))
    (path / STATE).write_text(json.dumps(state), "utf-8")


def restore_teacher(path: Path, teacher: Any) -> dict[str, Any]:
    from safetensors.torch import load_model

    device = next(teacher.parameters()).device
    load_model(teacher, str(path / TEACHER), device=str(device))
    state: dict[str, Any] = json.loads((path / STATE).read_text("utf-8"))
    return state
