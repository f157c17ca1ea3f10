"""Reading a stream back as a sequence of checked entries, with look-ahead for diagnosis.

What `verify` reads may have been put there by anyone who can write the folder, so reading is bounded: a
segment must be a regular file inside its stream's folder (not a symlink, FIFO or device: /dev/zero would
be read for ever), and a line longer than `MAX_LINE_BYTES` is not read into memory but reported.
"""

from __future__ import annotations

import json
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from owstack.compliance import chain
from owstack.compliance.segments import segment_name

KEEP_WHOLE = frozenset({chain.CHECKPOINT, chain.STREAM_OPENED, chain.STREAM_RESUMED})
#: the longest line `verify` reads: far above any record (a request's record with captured content holds a
#: request body, at most `server.max_body_bytes`, 16 MiB by default, encrypted), far below the memory it has
MAX_LINE_BYTES = 256 * 1024 * 1024
#: the largest manifest, prune marker or public key file read
MAX_SMALL_FILE = 1024 * 1024
_CHUNK = 1 << 16
#: how much of a torn last line is kept to tell a crash's torn write from bytes appended to the log
TORN_HEAD = 4096


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
    #: canonical form the writer writes: duplicate keys, reordering), "torn" (the last line, no newline) or
    #: "unreadable" (a segment that is not a regular file, or cannot be read: `problem` says why)
    state: str = "ok"
    size: int = 0
    problem: str = ""
    stream: str = ""
    #: the first bytes of a torn line (to tell a torn write from bytes appended to the log)
    head: bytes = b""

    @property
    def where(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{segment_name(self.segment)} line {self.line}{seq}"


def open_regular(path: Path) -> int:
    """A read-only descriptor of `path` if it is a regular file and not a symlink; OSError otherwise (a FIFO
    is opened without blocking, then refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unreadable(path: Path) -> str | None:
    """Why a segment cannot be read as one, or None."""
    try:
        st = path.lstat()
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return f"{path.name} is a symbolic link (the writer writes regular files): its records live elsewhere"
    if not stat.S_ISREG(st.st_mode):
        return f"{path.name} is not a regular file"
    return None


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool, int]]:
    """(offset, bytes, complete, size) of every line. A line longer than MAX_LINE_BYTES ends the segment's
    lines: its first bytes are given with a size over the limit, and the rest of the file is not read (a
    sparse file of terabytes of zeros costs one limit's worth of reading, not hours)."""
    limit = MAX_LINE_BYTES
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        offset = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            size, complete = len(raw), raw.endswith(b"\n")
            if not complete and size > limit:
                yield offset, raw[:_CHUNK], False, size
                return
            yield offset, raw[:-1] if complete else raw, complete, size - int(complete)
            offset += size


def entries(segments: list[tuple[int, Path]]) -> Iterator[Entry]:
    for index, path in segments:
        problem = _unreadable(path)
        if problem is not None:
            yield Entry(segment=index, line=1, offset=0, state="unreadable", problem=problem)
            continue
        try:
            yield from _segment_entries(index, path)
        except OSError as exc:
            yield Entry(segment=index, line=1, offset=0, state="unreadable", problem=f"{path.name}: {exc}")


def _segment_entries(index: int, path: Path) -> Iterator[Entry]:
    for n, (offset, raw, complete, size) in enumerate(_lines(path), start=1):
        entry = Entry(segment=index, line=n, offset=offset, size=size)
        if size > MAX_LINE_BYTES:
            entry.state = "corrupt"
            entry.problem = f"a line longer than {MAX_LINE_BYTES} bytes: not a record the writer wrote"
            yield entry
            return
        if not complete:
            entry.state, entry.head = "torn", raw[:TORN_HEAD]
            yield entry
            continue
        record = _parse(raw)
        if record is None or not _well_formed(record):
            entry.state = "corrupt"
            entry.problem = "not a JSON audit record"
            entry.seq = _claimed_seq(raw)
            yield entry
            continue
        try:
            problem = chain.line_problem(raw, record)
            entry.hash_ok = chain.recompute(record) == record["entry_hash"]
        except (TypeError, ValueError, RecursionError):  # nested deeper than the writer can write
            entry.state, entry.problem, entry.seq = "corrupt", "not a record the writer can write", record["seq"]
            yield entry
            continue
        if problem is not None:
            entry.state, entry.problem = "edited", problem
        entry.seq = record["seq"]
        entry.prev = record["prev_hash"]
        entry.hash = record["entry_hash"]
        entry.type = record["type"]
        entry.time = str(record.get("time", ""))
        entry.stream = str(record.get("stream", ""))
        if entry.type in KEEP_WHOLE:
            entry.record = record
        yield entry


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _claimed_seq(raw: bytes) -> int | None:
    """The `seq` a line that is not a record claims, read leniently (NaN, a BOM ...), for the report."""
    try:
        value = json.loads(raw.decode("utf-8", "replace").lstrip("\ufeff"))
    except (ValueError, RecursionError):
        return None
    seq = value.get("seq") if isinstance(value, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _well_formed(record: dict[str, Any]) -> bool:
    seq = record.get("seq")
    return (
        isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq > 0
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
    """`read_json` of a regular file of at most MAX_SMALL_FILE bytes, refusing a duplicate key (parsers
    resolve it differently, so it hides a second value). ValueError when it is anything else."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_SMALL_FILE + 1)
    if len(data) > MAX_SMALL_FILE:
        raise ValueError(f"{path.name} is larger than {MAX_SMALL_FILE} bytes")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ValueError(f"{path.name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    key = chain.duplicate_key(data)
    if key is not None:
        raise ValueError(f"{path.name}: the key {key!r} appears twice")
    return value
