"""Background threads that must not preempt the event loop, and fewer wake-ups for them.

    background_priority()     called first thing in a writer thread (the audit log, the ledger's
                              write-ahead log, the ledger writer)
    Handoff(take)             items added during one turn of the event loop reach `take` together, at the
                              end of that turn (one wake-up of the writer per turn, not per request)
    Beside(name)              runs calls on a second thread while the caller makes its own blocking call
                              (the audit writer's fdatasync beside the ledger log's: the disk's two cache
                              flushes overlap instead of following each other)

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

import _thread
import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


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


class Beside:
    """A thread that runs a list of calls while its caller does something else, for two blocking system calls
    at once: `start(calls)`, then the caller's own call (which releases the GIL), then `wait()`.

    Why: a commit thread that fsyncs two files, one after the other, waits for two flushes of the disk's
    write cache. Issued together, the kernel's block layer serves both with one flush (measured on this
    project's test host: two sequential fdatasyncs of two files 8.0 ms, side by side 2.9-3.4 ms, one file
    4.0 ms; docs/benchmarks.md). The thread keeps the default scheduling policy: it does no Python work
    worth the name, and a SCHED_BATCH thread could wait for the next scheduler tick to start its call.
    Raw locks (not `threading.Event`): two of them per use, no Python-level condition."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._go = _thread.allocate_lock()
        self._go.acquire()
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self._calls: list[Callable[[], None]] | None = None
        self._thread: threading.Thread | None = None
        self._started = False

    def start(self, calls: list[Callable[[], None]]) -> None:
        """Begin running `calls` (in order) on the thread; `wait()` must follow before the next `start`."""
        if self._thread is None:
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a process limit): the calls run here, one after the other
                log.warning("%s: no helper thread could be started; the calls run in turn", self.name)
                for call in calls:
                    call()
                return
            self._thread = thread
        self._calls = calls
        self._started = True
        self._go.release()

    def wait(self) -> None:
        """Return once the calls of the last `start` have returned (at once if none is running)."""
        if self._started:
            self._done.acquire()
            self._started = False

    def close(self) -> None:
        """Stop the thread (after the running calls, if any)."""
        self.wait()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._calls = None
            self._go.release()
            thread.join()

    def _run(self) -> None:
        while True:
            self._go.acquire()
            calls = self._calls
            if calls is None:
                return
            for call in calls:
                try:
                    call()
                except Exception:  # each call reports its own errors; a bug must not strand the waiter
                    log.exception("%s: a call run beside the commit failed", self.name)
            self._done.release()
