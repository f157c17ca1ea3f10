"""The writer's built rows waiting for the database, in order, each chunk with what to do once it is in.

    chunks.add(rows, done)          done: called once the rows are in the database (release them from the
                                    write-ahead log, delete a replayed file, ...), or None
    chunks.write(sink, wrote, rejected)   write them in order (`wrote(n)` after each); a chunk the database
                                    refuses is split in halves until the refused row is alone
                                    (`rejected(row, reason)`); on an outage stop and keep the rest
                                    (raises `SinkError` with `outage`)

All or nothing per chunk: a chunk is one transaction of the sink (a journaled batch, or an INSERT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from owstack.metering.sink import InlineSink, ProcessSink, SinkError

Row = tuple[Any, ...]
Done = Callable[[], None] | None


class Chunks:
    def __init__(self) -> None:
        self._rows: list[list[Row]] = []
        self._done: list[Done] = []

    def __bool__(self) -> bool:
        return bool(self._rows)

    def __iter__(self) -> Iterator[list[Row]]:
        return iter(self._rows)

    @property
    def size(self) -> int:
        return sum(len(c) for c in self._rows)

    def add(self, rows: list[Row], done: Done = None) -> None:
        self._rows.append(rows)
        self._done.append(done)

    def clear(self) -> None:
        self._rows.clear()
        self._done.clear()

    def write(
        self, sink: InlineSink | ProcessSink, wrote: Callable[[int], None], rejected: Callable[[Row, str], None]
    ) -> None:
        """Write every chunk. Raises `SinkError(outage=True)`, keeping what is left."""
        while self._rows:
            chunk = self._rows[0]
            try:
                sink.write(chunk)
            except SinkError as exc:
                if exc.outage:
                    raise
                self._rows.pop(0)
                done = self._done.pop(0)
                if len(chunk) == 1:
                    rejected(chunk[0], exc.reason)
                    if done is not None:
                        done()
                else:  # split: the first half carries nothing, the second what the chunk carried
                    mid = len(chunk) // 2
                    self._rows[0:0] = [chunk[:mid], chunk[mid:]]
                    self._done[0:0] = [None, done]
                continue
            self._rows.pop(0)
            done = self._done.pop(0)
            if done is not None:
                done()
            wrote(len(chunk))
