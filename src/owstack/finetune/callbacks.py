"""Trainer callbacks shared by `owstack finetune` and `owstack distill`: progress, metrics, interruption.

- `RichProgress`: one Rich progress bar on stderr with elapsed time, ETA and the latest loss (main
  process only; other ranks stay quiet).
- `MetricsLog`: every `on_log` entry appended to `metrics.jsonl` (one JSON object per line, with step
  and wall time), flushed at once so a crashed run keeps its history.
- `StopOnRequest`: when `should_stop()` turns true (Ctrl-C), save a checkpoint at the end of the current
  step and stop; the command then prints how to resume.

This module imports transformers: import it only on the training path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    def __init__(self, description: str, stats: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.description = description
        self.stats = stats or _loss_stats
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=Console(stderr=True),
        )
        self._progress.start()
        self._task = self._progress.add_task(
            self.description, total=state.max_steps, completed=state.global_step, stats=""
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if self._progress is not None and logs:
            self._progress.update(self._task, stats=self.stats(logs))

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)
            self._progress.stop()
            self._progress = None


def _loss_stats(logs: dict[str, Any]) -> str:
    parts = []
    for key in ("loss", "eval_loss", "rewards/accuracies", "grad_norm"):
        if isinstance(logs.get(key), int | float):
            parts.append(f"{key.split('/')[-1]} {logs[key]:.4g}")
    return "  ".join(parts)


class MetricsLog(TrainerCallback):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._started = time.monotonic()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        entry = {"step": state.global_step, "epoch": state.epoch, "time_s": round(time.monotonic() - self._started, 2)}
        entry.update({k: v for k, v in logs.items() if isinstance(v, int | float | str | bool)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


class StopOnRequest(TrainerCallback):
    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.stopped_at: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if self.should_stop() and state.global_step < state.max_steps:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control
