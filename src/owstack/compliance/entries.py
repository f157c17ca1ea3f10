"""Reading a stream back as a sequence of checked entries, with look-ahead for diagnosis."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack.compliance import chain
from owstack.compliance.segments import iter_lines, read_json, segment_name

KEEP_WHOLE = frozenset({chain.CHECKPOINT, chain.STREAM_OPENED, chain.STREAM_RESUMED})


@dataclass(slots=True)
class Entry:
    segment: int
    line: int  # 1-based line number in the segment
    offset: int
    seq: int | None = None
    prev: str = ""
    hash: str = ""
    type: str = ""
    time: str = ""
    hash_ok: bool = False
    #: the parsed record, kept only for checkpoints and stream markers
    record: dict[str, Any] | None = None
    #: "ok", "corrupt" (a complete line that is not a record), "edited" (a record whose line is not the
    #: canonical form the writer writes: duplicate keys, reordering) or "torn" (the last line, no newline)
    state: str = "ok"
    size: int = 0
    problem: str = ""

    @property
    def where(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{segment_name(self.segment)} line {self.line}{seq}"


def entries(segments: list[tuple[int, Path]]) -> Iterator[Entry]:
    for index, path in segments:
        for n, line in enumerate(iter_lines(path, index), start=1):
            entry = Entry(segment=index, line=n, offset=line.offset, size=len(line.raw))
            if not line.complete:
                entry.state = "torn"
                yield entry
                continue
            record = line.parse()
            if record is None or not _well_formed(record):
                entry.state = "corrupt"
                yield entry
                continue
            problem = chain.line_problem(line.raw, record)
            if problem is not None:
                entry.state, entry.problem = "edited", problem
            entry.seq = record["seq"]
            entry.prev = record["prev_hash"]
            entry.hash = record["entry_hash"]
            entry.type = record["type"]
            entry.time = str(record.get("time", ""))
            entry.hash_ok = chain.recompute(record) == entry.hash
            if entry.type in KEEP_WHOLE:
                entry.record = record
            yield entry


def _well_formed(record: dict[str, Any]) -> bool:
    return (
        isinstance(record.get("seq"), int)
        and isinstance(record.get("prev_hash"), str)
        and isinstance(record.get("entry_hash"), str)
        and isinstance(record.get("type"), str)
    )


class Lookahead:
    """An iterator that can peek a bounded number of entries ahead."""

    def __init__(self, it: Iterator[Entry]) -> None:
        self._it = it
        self._buf: deque[Entry] = deque()

    def __iter__(self) -> Lookahead:
        return self

    def __next__(self) -> Entry:
        if self._buf:
            return self._buf.popleft()
        return next(self._it)

    def peek(self, n: int) -> list[Entry]:
        while len(self._buf) < n:
            try:
                self._buf.append(next(self._it))
            except StopIteration:
                break
        return list(self._buf)[:n]


def read_strict_json(path: Path) -> dict[str, Any] | None:
    """`read_json`, refusing a duplicate key (parsers resolve it differently, so it hides a second value)."""
    value = read_json(path)
    if value is not None:
        key = chain.duplicate_key(path.read_bytes())
        if key is not None:
            raise ValueError(f"{path.name}: the key {key!r} appears twice")
    return value
