"""Background threads that must not preempt the event loop, and fewer wake-ups for them.

    background_priority()     called first thing in a writer thread (the audit log, the ledger's
                              write-ahead log, the ledger writer)
    Handoff(take)             items added during one turn of the event loop reach `take` together, at the
                              end of that turn (one wake-up of the writer per turn, not per request)

Why: the gateway runs its event loop and its writer threads on the same core (a pinned process, a
container's CPU limit). Every commit ends with the thread waiting for the next record, and the next record
wakes it: Linux's scheduler then preempts the event loop in favour of the woken thread, which at once
blocks on Python's GIL the loop still holds, and the loop waits its turn back. With the audit log and the
ledger's log on, that hand-off took a quarter of the loop's samples under load (py-spy --gil, docs/
benchmarks.md). SCHED_BATCH tells the scheduler not to preempt on wake-up: the thread runs when the loop
waits for I/O or its time slice ends, which is soon under load and at once when idle. Measured on this
host, chat at 16 connections with every stage on: +15% requests/s, -15% CPU per request. The policy needs no
privilege; where it is not available (not Linux) nothing changes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def background_priority() -> bool:
    """Put the calling thread under SCHED_BATCH (Linux); True if it was set."""
    setter = getattr(os, "sched_setscheduler", None)
    batch = getattr(os, "SCHED_BATCH", None)
    if setter is None or batch is None:
        return False
    try:
        setter(0, batch, os.sched_param(0))  # 0: the calling thread
    except OSError:
        return False
    return True


class Handoff(Generic[T]):
    """Collects items on the event loop's thread and hands them to `take` once per loop turn (`call_soon`:
    after every callback that is ready now has run), so that requests finishing in the same turn share one
    wake-up of the thread that writes them. A loop that closed before its turn ended leaves its items to the
    next turn of another loop rather than stranding them."""

    def __init__(self, take: Callable[[list[T]], None]) -> None:
        self.take = take
        self._items: list[T] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, loop: asyncio.AbstractEventLoop, item: T) -> None:
        self._items.append(item)
        if self._loop is not loop or len(self._items) == 1 or loop.is_closed():
            self._loop = loop
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        items, self._items = self._items, []
        self._loop = None
        if items:
            self.take(items)
