"""Progress for long CLI work, on standard error, the same everywhere: two context managers.

    with bar("baseline", total=60) as b:      # a bar with count, elapsed time and ETA
        for item in items:
            ...
            b.advance()                        # or b.advance(n); b.update(total=..., status="loss 0.41")

    with status("loading the model") as say:   # a spinner with one live line, for work of unknown length
        ...
        say("generating: 120 tokens, 31 tok/s")

`total=None` gives a bar of unknown length (a spinner, the count and the elapsed time), for walks of
trees whose size is not known up front. Nothing is drawn when standard error is not a terminal (CI logs,
pipes, tests), so output stays clean; the work and its results are the same either way. Both are
transient: the line disappears when the block ends, and the command prints its result as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bar:
    """One task of a progress display: advance it, or change its total or its status text."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, *, total: float | None = None, completed: float | None = None, status: str | None = None) -> None:
        fields: dict[str, Any] = {} if status is None else {"status": status}
        self._progress.update(self._task, total=total, completed=completed, **fields)


def stderr_console() -> Console:
    """The console progress is drawn on: standard error."""
    return Console(stderr=True)


@contextmanager
def bar(description: str, total: float | None, *, console: Console | None = None) -> Iterator[Bar]:
    """A progress bar with ETA for `total` steps (None: unknown)."""
    out = console or stderr_console()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=out, transient=True, disable=not out.is_terminal) as progress:
        yield Bar(progress, progress.add_task(description, total=total, status=""))


@contextmanager
def status(message: str, *, console: Console | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner and one line of text, replaced by each call of the function it yields."""
    out = console or stderr_console()
    if not out.is_terminal:
        yield lambda _text: None
        return
    with out.status(message) as live:
        yield live.update
