"""What the ledger writer hands over from its write-ahead log besides its queue: a previous process's
leftovers, and the records it let go while its queue was full; and what it may release from the log.

    recovery = Recovery(wal, batch_size)
    recovery.open()                         # claim a slot; the leftovers to replay (WalUnavailable)
    chunk = recovery.next(queue_length, max_buffer)   # (records, done) to write first, or None
    recovery.release(seq)                   # every record up to `seq` is in the database

`done` is what to call once the chunk's rows are in the database: delete the replayed leftover file, or
move the backlog's floor up. The writer writes these chunks before the records of its queue, and never
releases a record the backlog has not read back yet (`release` stops below the floor).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from owstack.metering.backlog import Backlog
from owstack.metering.record import Pending, from_wal
from owstack.metering.wal import Wal, read_segment

if TYPE_CHECKING:
    from owstack.config.load import Config

log = logging.getLogger("owstack.metering.writer")

Chunk = tuple[list[Pending], Callable[[], None] | None]


class Recovery:
    def __init__(self, wal: Wal, batch_size: int) -> None:
        self.wal = wal
        self.batch_size = batch_size
        self.backlog = Backlog(wal)
        self.leftovers: list[Path] = []
        #: records read back from the log (leftovers and the backlog)
        self.replayed = 0

    def open(self) -> None:
        if self.wal.slot is None:
            self.leftovers = self.wal.open()
            if self.leftovers:
                log.info("ledger: replaying %d segment(s) of the write-ahead log", len(self.leftovers))

    @property
    def behind(self) -> bool:
        """Records the log holds that the writer has yet to hand over."""
        return bool(self.leftovers) or self.backlog.floor is not None

    def next(self, queued: int, max_buffer: int) -> list[Chunk] | None:
        """The next records to write ahead of the queue: a leftover file (in chunks, the last one deleting
        it), or, once the queue has room, a chunk of the backlog; None when there is nothing to do."""
        if self.leftovers:
            path = self.leftovers.pop(0)
            records = _records(read_segment(path))
            self.replayed += len(records)
            chunks: list[Chunk] = [
                (records[i : i + self.batch_size], None) for i in range(0, len(records), self.batch_size)
            ]
            discard = functools.partial(self.wal.discard, path)
            if not chunks:
                discard()
                return []
            chunks[-1] = (chunks[-1][0], discard)
            return chunks
        if self.backlog.floor is None or queued > max_buffer // 2:
            return None
        got = self.backlog.take(self.batch_size)
        if got is None:
            return None
        records, end = got
        self.replayed += len(records)
        return [(records, functools.partial(self._read_back, end))]

    def release(self, seq: int) -> None:
        """The records up to `seq` are in the database: the log may let them go (not past a record the
        writer let go and has not read back yet)."""
        floor = self.backlog.floor
        self.wal.release(seq if floor is None else min(seq, floor - 1))

    def _read_back(self, end: int) -> None:
        """Records below `end` read back from the log are in the database (and so is every record below it
        that the queue carried): the floor moves up, and the log may let them go."""
        self.backlog.advance(end)
        self.release(end - 1)


def _records(payloads: Iterable[bytes]) -> list[Pending]:
    """The records of a leftover segment (a payload that is not one is logged and skipped)."""
    records = []
    for payload in payloads:
        try:
            records.append(from_wal(payload))
        except ValueError as exc:
            log.error("ledger: a record of the write-ahead log is unreadable (%s); skipped", exc)
    return records


def wal_for(config: Config) -> Wal | None:
    """The write-ahead log `metering.durable` asks for (none for an in-memory database: nothing outlives it)."""
    from owstack.storage import in_memory

    m = config.file.metering
    if not m.durable or in_memory(config.file.storage.url):
        return None
    return Wal(Path(m.wal_directory).expanduser().resolve(), sync=m.wal_sync)
