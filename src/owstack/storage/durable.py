"""Writes that must be on disk before a response completes, awaited together rather than one after another.

    durable.defer(ctx, future, failed)   an after-hook started a durable write and does not wait for it itself;
                                         `failed(exc)` is the error the request gets if the write fails
    await durable.settle(ctx)            the outermost after-hook (audit) waits for its own write and these

With both on, a request's ledger record usually rides inside its audit record (`metering.audit_journal`: one
log, one fsync) and nothing is deferred here; what follows is for the records that still go to the ledger's
write-ahead log (the audit writer not taking records, the ledger writer's queue full, the MCP gateway's calls).

Why: the ledger's write-ahead log and the audit log each wait for an fsync. The pipeline runs after-hooks one
after the other, so a meter stage that waited for its own fsync before the audit stage started its own would
double the time a response waits on the disk (each fsync here costs 0.2-4 ms, docs/benchmarks.md). The meter
stage starts its write and defers it; the audit stage, which runs after it, starts its own and then waits
for both. Without an audit stage the meter stage waits for its own.

One commit for both (a carrier and its riders):

    durable.defer(ctx, future, failed, rider=wal)   the write is queued in `wal`, a `Rider`
    durable.carry(ctx, carrier)                     the audit stage has its writer (a `Carrier`) commit the
                                                    rider's queued records in its own group commit

A busy carrier's commit thread takes the rider's queued records with its own, writes both, fsyncs both
files side by side (the rider's on a helper thread, `storage.threads.Beside`: the disk serves the two
flushes as one, where one after the other they took twice as long), and settles both: under load one
commit cycle per batch instead of two.
Records that arrive while the carrier is idle go to the rider's own thread, so that the two fsyncs
overlap. Every rider record is still on disk (its own file, its own framing, fsynced) before its future
completes. A rider whose carrier stops, fails, or leaves a batch untaken for the rider's grace time commits
it on its own thread, as it did alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from owstack.errors import OwstackError
    from owstack.pipeline.context import RequestContext

NOTE = "durable"
RIDERS = "durable.riders"


class Carrier(Protocol):
    """A log whose commit thread also commits its riders' queued records (the audit writer)."""

    @property
    def carrying(self) -> bool:
        """True while it takes riders' records (running and healthy)."""
        ...

    @property
    def busy(self) -> bool:
        """Its commit thread is committing (not waiting for work): records queued now join its next batch."""
        ...

    def wake(self) -> None:
        """A rider queued records: wake the commit thread if it waits."""
        ...

    def carry(self, rider: Rider) -> None:
        """Commit `rider`'s queued records with the carrier's own from now on (`rider.carry_with(self)`)."""
        ...


class Carried(Protocol):
    """A rider's batch the carrier's thread has written (`Rider.carry`)."""

    def sync(self) -> None:
        """fdatasync it; on any thread, beside the carrier's own fdatasync; keeps an error for `finish`."""
        ...

    def finish(self) -> None:
        """(carrier's thread, once its own batch is on disk or failed) `sync` if that has not run, account for
        the batch, settle its futures."""
        ...


class Rider(Protocol):
    """A log that can have its queued records committed by a carrier's thread (the ledger's WAL)."""

    carrier: Carrier | None

    @property
    def pending(self) -> bool:
        """Records are queued."""
        ...

    def carry_with(self, carrier: Carrier) -> None: ...

    def carry(self) -> Carried | None:
        """(carrier's thread) Take the queued records and write them; None when nothing was queued."""
        ...

    def uncarried(self, carrier: Carrier) -> None:
        """`carrier` stopped taking records (closed, failed): commit them on the rider's own thread."""
        ...


def defer(
    ctx: RequestContext,
    future: asyncio.Future[None],
    failed: Callable[[BaseException], OwstackError],
    *,
    rider: Rider | None = None,
) -> None:
    """`rider`: the log the write is queued in, which the outermost stage may have carried by its own."""
    waiting = ctx.notes.get(NOTE)
    if waiting is None:
        ctx.notes[NOTE] = [(future, failed)]
    else:
        waiting.append((future, failed))
    if rider is not None:
        ctx.notes[RIDERS] = rider


def carry(ctx: RequestContext, carrier: Carrier) -> None:
    """Have the request's deferred writes committed with `carrier`'s (before the loop turn ends)."""
    ride(ctx.notes.get(RIDERS), carrier)


def ride(rider: Rider | None, carrier: Carrier) -> None:
    """Have `rider`'s queued writes committed with `carrier`'s from now on (before the loop turn ends), for a
    caller without a pipeline context (the MCP gateway's tool calls)."""
    if rider is not None and rider.carrier is not carrier and carrier.carrying:
        carrier.carry(rider)


async def settle(ctx: RequestContext) -> None:
    """Wait for every deferred write of the request; raise the first failure's error (once all have ended)."""
    waiting = ctx.notes.pop(NOTE, None)
    if not waiting:
        return
    if len(waiting) == 1:  # the common case (the ledger's record), often done already: no gather
        future, failed = waiting[0]
        try:
            await future
        except Exception as exc:
            raise failed(exc) from None
        return
    results = await asyncio.gather(*(future for future, _ in waiting), return_exceptions=True)
    for (_, failed), result in zip(waiting, results, strict=True):
        if isinstance(result, BaseException):
            raise failed(result) from None
