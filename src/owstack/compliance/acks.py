"""What an audit append gives back, and how the commit thread completes the appenders' futures.

AuditUnavailable        the log cannot be written (the message says why)
Appended                where a record landed: stream, sequence number, entry hash
AsyncDone(loop, fut)    completes an asyncio future from the commit thread
acknowledge(acked)      one call into each event loop per commit, not one per record
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple


class AuditUnavailable(Exception):
    """The audit log cannot be written; the message says why."""


class Appended(NamedTuple):
    """(A named tuple, not a frozen dataclass: one is made per record on the commit thread, and a frozen
    dataclass's `__init__` sets each field through `object.__setattr__`, three times the cost.)"""

    stream: str
    seq: int
    entry_hash: str


Done = Callable[[Appended | None, BaseException | None], None]


def ignore(result: Appended | None, exc: BaseException | None) -> None:
    return None


class AsyncDone:
    """Completes an asyncio future from the commit thread (batched: one loop wake-up per commit)."""

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Appended]) -> None:
        self.loop, self.fut = loop, fut

    def __call__(self, result: Appended | None, exc: BaseException | None) -> None:
        _call_in(self.loop, _settle_all, [(self.fut, result, exc)])


def _call_in(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], arg: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, arg)
    except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
        pass


def acknowledge(acked: list[tuple[Done, Appended]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Appended], Appended, None]]] = {}
    for done, result in acked:
        if isinstance(done, AsyncDone):
            by_loop.setdefault(done.loop, []).append((done.fut, result, None))
        else:
            done(result, None)
    for loop, items in by_loop.items():
        _call_in(loop, _settle_all, items)


def _settle_all(items: list[tuple[asyncio.Future[Appended], Appended | None, BaseException | None]]) -> None:
    for fut, result, exc in items:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            assert result is not None
            fut.set_result(result)
