"""Checkpoints that resume exactly: student and teacher weights (safetensors), optimizer, RNG, cursor.

    OUT/checkpoints/step-000020/{student,teacher}.safetensors, optimizer.pt, rng.pt, state.json
    OUT/checkpoints/LATEST          the name of the newest complete checkpoint

A checkpoint is written to a temporary folder and renamed into place, so an interrupted save never
leaves a half-written one behind; the two newest are kept.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

KEEP = 2


def _dir(out: Path) -> Path:
    return out / "checkpoints"


def latest(out: Path) -> Path | None:
    marker = _dir(out) / "LATEST"
    if not marker.is_file():
        return None
    path = _dir(out) / marker.read_text("utf-8").strip()
    return path if (path / "state.json").is_file() else None


def save(out: Path, step: int, student: Any, teacher: Any, optimizer: Any, state: dict[str, Any]) -> Path:
    import torch
    from safetensors.torch import save_model

    root = _dir(out)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(student, str(tmp / "student.safetensors"))
    save_model(teacher, str(tmp / "teacher.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    version, internal, gauss = random.getstate()
    python_rng = [version, list(internal), gauss]
    (tmp / "state.json").write_text(json.dumps({**state, "step": step, "python_rng": python_rng}), "utf-8")
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / "LATEST.tmp").write_text(name, "utf-8")
    (root / "LATEST.tmp").replace(root / "LATEST")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore(path: Path, student: Any, teacher: Any, optimizer: Any) -> dict[str, Any]:
    """Load a checkpoint into the given objects and restore the RNG states; returns state.json."""
    import torch
    from safetensors.torch import load_model

    device = next(student.parameters()).device
    load_model(student, str(path / "student.safetensors"), device=str(device))
    load_model(teacher, str(path / "teacher.safetensors"), device=str(device))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state: dict[str, Any] = json.loads((path / "state.json").read_text("utf-8"))
    version, internal, gauss = state.pop("python_rng")
    random.setstate((version, tuple(internal), gauss))
    return state
