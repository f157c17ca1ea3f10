"""Writes that must be on disk before a response completes, awaited together rather than one after another.

    durable.defer(ctx, future, failed)   an after-hook started a durable write and does not wait for it itself;
                                         `failed(exc)` is the error the request gets if the write fails
    await durable.settle(ctx)            the outermost after-hook (audit) waits for its own write and these

Why: the ledger's write-ahead log and the audit log each wait for an fsync. The pipeline runs after-hooks one
after the other, so a meter stage that waited for its own fsync before the audit stage started its own would
double the time a response waits on the disk (each fsync here costs 0.2-4 ms, docs/benchmarks.md). The meter
stage starts its write and defers it; the audit stage, which runs after it, starts its own and then waits
for both: they overlap in their threads. Without an audit stage the meter stage waits for its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from owstack.errors import OwstackError
    from owstack.pipeline.context import RequestContext

NOTE = "durable"


def defer(ctx: RequestContext, future: asyncio.Future[None], failed: Callable[[BaseException], OwstackError]) -> None:
    waiting = ctx.notes.get(NOTE)
    if waiting is None:
        ctx.notes[NOTE] = [(future, failed)]
    else:
        waiting.append((future, failed))


async def settle(ctx: RequestContext) -> None:
    """Wait for every deferred write of the request; raise the first failure's error (once all have ended)."""
    waiting = ctx.notes.pop(NOTE, None)
    if not waiting:
        return
    results = await asyncio.gather(*(future for future, _ in waiting), return_exceptions=True)
    for (_, failed), result in zip(waiting, results, strict=True):
        if isinstance(result, BaseException):
            raise failed(result) from None
