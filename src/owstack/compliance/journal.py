"""Where the audit writer makes a commit durable, so that the segment it also goes to only ever grows.

A commit's bytes are appended to the live segment, which is not fsynced per commit (log shippers follow it
by its size, so it is never preallocated: docs/compliance.md), and written in place into the stream's
journal, a zero-filled file of `JOURNAL_BYTES`, which is. An fdatasync of a file whose size does not change
flushes its data and the disk's cache; of a file that grew, also the new size through the file system's own
journal: on ext4 a commit of ~14 records waits 20-40% less (docs/benchmarks.md, `bench/fsync_journal.py`).
The segment's pages reach the disk with the kernel's writeback.

The journal is written in laps. A lap starts with a header naming the segment, the offset in it where the
lap's records go and the chain's sequence number and head there; the lap's records follow, the same bytes
as in the segment. Before a lap starts (the journal is full, or the writer moved to another segment, or a
write failed) the segment is fsynced, so that what the last lap held is on disk in the segment before the
lap is overwritten; so is a segment the writer leaves, and the segment before the manifest names a
checkpoint in it. A process killed with -9 loses nothing either way (its writes are in the page cache).
After a crash of the host the segment may lack records the journal holds: `recover` copies them back, under
the stream's lock, before the stream is read to be continued (the writer) or replayed into the ledger.

`recover` is strict: it takes the lap's records only while they chain from the header (sequence numbers,
links and entry hashes: bytes of an older lap never do), and writes them into the segment only where the
segment holds the same bytes or none (a shorter file, or zeros the file system left in a page it had not
written); a segment that holds other bytes there is left for resume and `owstack audit verify` to report.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from owstack.compliance import chain
from owstack.compliance.segments import segment_name

JOURNAL = "journal"
#: the journal's size (records of one lap: this less the header)
JOURNAL_BYTES = 2 * 1024 * 1024
HEADER_BYTES = 256
_FORMAT = "owstack-audit-journal/1"
log = logging.getLogger("owstack.audit")


@dataclass(slots=True)
class Lap:
    """Where a lap's records go: the segment, the offset in it, and the chain's state there."""

    segment: int
    offset: int
    seq: int
    head: str


class Journal:
    """The commit thread's side: `commit(buf, ...)` returns once `buf` is on disk (in the journal or, when a
    lap starts, in the segment itself). Raises OSError; the next commit then starts a new lap."""

    def __init__(self, stream_dir: Path, stream: str, size: int | None = None) -> None:
        self.path = stream_dir / JOURNAL
        self.stream = stream
        self.size = size or JOURNAL_BYTES
        self._fd: int | None = None
        self._lap: Lap | None = None  # None: the next commit starts a lap
        self._pos = HEADER_BYTES
        #: laps started, and commits made durable by the segment's own fsync (a lap's first, or too large)
        self.laps = 0
        self.segment_syncs = 0

    def commit(self, buf: bytes | bytearray, segment_fd: int, segment: int, end: int, seq: int, head: str) -> None:
        """`buf` was appended to segment `segment` (fd `segment_fd`), which now ends at `end`, where the
        chain is at `seq` / `head`."""
        lap = self._lap
        if lap is None or lap.segment != segment or self._pos + len(buf) > self.size:
            self._start(segment_fd, Lap(segment, end, seq, head))
            return
        fd = self._fd
        assert fd is not None
        try:
            _pwrite_all(fd, buf, self._pos)
            os.fdatasync(fd)
        except OSError:
            self._lap = None  # the next commit starts a lap (its header goes first)
            try:  # the failed batch's records (refused, the chain rolled back) must not be recovered
                _pwrite_all(fd, bytes(len(buf)), self._pos)
            except OSError:
                pass
            raise
        self._pos += len(buf)

    def segment_left(self, segment_fd: int) -> None:
        """The writer leaves this segment (rotation, close): it goes to disk whole."""
        self._lap = None
        os.fdatasync(segment_fd)

    def close(self) -> None:
        fd, self._fd, self._lap = self._fd, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _start(self, segment_fd: int, lap: Lap) -> None:
        """A new lap: the segment first (this commit with it, and all the last lap held), then the header,
        which the lap's next commit makes durable with its own records."""
        self._lap = None
        os.fdatasync(segment_fd)
        self.segment_syncs += 1
        if self._fd is None:
            self._fd = _open(self.path, self.size)
        header = orjson.dumps(
            {
                "format": _FORMAT,
                "stream": self.stream,
                "segment": lap.segment,
                "offset": lap.offset,
                "seq": lap.seq,
                "head": lap.head,
            },
            option=orjson.OPT_SORT_KEYS,
        )
        if len(header) >= HEADER_BYTES:
            raise OSError(f"the journal header of {self.stream} does not fit {HEADER_BYTES} bytes")
        _pwrite_all(self._fd, header.ljust(HEADER_BYTES - 1) + b"\n", 0)
        self._lap, self._pos = lap, HEADER_BYTES
        self.laps += 1


def _open(path: Path, size: int) -> int:
    """The journal, `size` bytes long, written with zeros once (not `fallocate`d: a write into an extent
    allocated but never written changes the extent, which costs the fsync a journal commit again)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        have = os.fstat(fd).st_size
        if have < size:
            _pwrite_all(fd, bytes(size - have), have)
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pwrite_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


# -- after a crash ------------------------------------------------------------------------------------------


def recover(stream_dir: Path) -> int:
    """Copy into the stream's last segment the records its journal holds and the segment lacks (the caller
    holds the stream's lock). Returns how many records were written back; 0 when nothing was missing or the
    journal and the segment disagree (left for resume and verify). Raises OSError."""
    path = stream_dir / JOURNAL
    try:
        with path.open("rb") as fh:
            head = fh.read(HEADER_BYTES)
            lap = _header(head, stream_dir.name)
            if lap is None:
                return 0
            data = fh.read()
    except FileNotFoundError:
        return 0
    records, length = _chained(data, lap)
    if not records:
        return 0
    seg_path = stream_dir / segment_name(lap.segment)
    wanted = data[:length]
    try:
        fd = os.open(seg_path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        log.error("audit log: %s, which its journal names, is missing: not recovered", seg_path)
        return 0
    try:
        size = os.fstat(fd).st_size
        if size < lap.offset:
            log.error("audit log: %s ends before its journal's records (%d): not recovered", seg_path, lap.offset)
            return 0
        have = os.pread(fd, length, lap.offset)
        missing = _missing(have, wanted)
        if missing is None:
            log.error("audit log: %s holds other bytes than its journal (at %d): not recovered", seg_path, lap.offset)
            return 0
        if not missing:
            return 0
        _pwrite_all(fd, wanted, lap.offset)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    log.warning("audit log: %d record(s) copied from the journal into %s after a crash", missing, seg_path.name)
    return missing


def _header(raw: bytes, stream: str) -> Lap | None:
    try:
        value: Any = orjson.loads(raw.rstrip(b" \n\0"))
        if value.get("format") != _FORMAT or value.get("stream") != stream:
            return None
        return Lap(int(value["segment"]), int(value["offset"]), int(value["seq"]), str(value["head"]))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return None


def _chained(data: bytes, lap: Lap) -> tuple[list[bytes], int]:
    """The lap's lines that chain from its header, and how many bytes they take."""
    seq, head, at = lap.seq, lap.head, 0
    lines: list[bytes] = []
    while True:
        end = data.find(b"\n", at)
        if end < 0:
            break
        raw = data[at:end]
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            break
        if (
            not isinstance(record, dict)
            or record.get("seq") != seq + 1
            or record.get("prev_hash") != head
            or chain.recompute(record) != record.get("entry_hash")
        ):
            break
        lines.append(raw)
        seq, head, at = seq + 1, str(record["entry_hash"]), end + 1
    return lines, at


def _missing(have: bytes, wanted: bytes) -> int | None:
    """How many of `wanted`'s lines the segment lacks, whole or in part (bytes it does not have, or zeros
    where they go); None when it holds other bytes there."""
    step = 1 << 16
    first = len(have)
    for i in range(0, len(have), step):
        a = have[i : i + step]
        b = wanted[i : i + len(a)]
        if a == b:
            continue
        if any(x and x != y for x, y in zip(a, b, strict=True)):
            return None
        first = min(first, i + next(j for j, (x, y) in enumerate(zip(a, b, strict=True)) if x != y))
    return wanted.count(b"\n", first) if first < len(wanted) else 0
