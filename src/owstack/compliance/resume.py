"""Find where a claimed stream's chain ends, so a new writer can continue it.

The scan starts at the manifest's last signed checkpoint (so it reads at most one checkpoint interval)
and checks every record after it links to the one before. A final line without a newline is a torn write
left by a crash: the new writer starts a fresh segment and records the tear in its `stream_resumed`
record. Anything else out of place means the stream was damaged; the writer then refuses it (fail closed)
and `owstack audit verify` says what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from owstack.compliance import chain
from owstack.compliance.segments import MANIFEST, iter_lines, list_segments, read_json


class StreamDamaged(Exception):
    """The stream cannot be continued; the message says why."""


@dataclass(slots=True)
class Tail:
    seq: int = 0
    head: str = ""
    counter: int = 0
    sealed: bool = False
    segment: int = 0  # 0: no segment yet
    size: int = 0
    day: str = ""
    torn: dict[str, Any] | None = None
    records_since_checkpoint: int = 0

    @property
    def new(self) -> bool:
        return self.segment == 0


def scan(stream_dir: Path, stream: str) -> Tail:
    segments = list_segments(stream_dir)
    try:
        manifest = read_json(stream_dir / MANIFEST)
    except ValueError as exc:
        raise StreamDamaged(f"stream {stream}: {exc}") from None
    if not segments:
        if manifest is not None:
            raise StreamDamaged(f"stream {stream}: the manifest names a checkpoint but every segment is gone")
        return Tail(head=chain.genesis_hash(stream))
    if manifest is None:
        raise StreamDamaged(f"stream {stream}: segments without a manifest")
    cp = manifest.get("checkpoint") or {}
    try:
        start_seg, start_off = int(cp["segment"]), int(cp["offset"])
    except (KeyError, TypeError, ValueError):
        raise StreamDamaged(f"stream {stream}: the manifest has no usable checkpoint") from None
    tail = Tail()
    found = False
    for index, path in segments:
        if index < start_seg:
            continue
        for line in iter_lines(path, index, start_off if index == start_seg else 0):
            if not line.complete:
                if (index, path) != segments[-1]:
                    raise StreamDamaged(f"stream {stream}: a torn record inside {path.name}")
                tail.torn = {"segment": index, "offset": line.offset, "bytes": len(line.raw)}
                break
            record = line.parse()
            if record is None:
                raise StreamDamaged(f"stream {stream}: {path.name} offset {line.offset} is not a JSON record")
            if not found:
                if record.get("seq") != cp.get("seq") or record.get("entry_hash") != cp.get("entry_hash"):
                    raise StreamDamaged(f"stream {stream}: the manifest's checkpoint is not where it says")
                found = True
            elif record.get("seq") != tail.seq + 1 or record.get("prev_hash") != tail.head:
                raise StreamDamaged(f"stream {stream}: the chain breaks at {path.name} offset {line.offset}")
            if chain.recompute(record) != record.get("entry_hash"):
                raise StreamDamaged(f"stream {stream}: record at {path.name} offset {line.offset} was altered")
            _advance(tail, record)
    if not found:
        raise StreamDamaged(f"stream {stream}: the manifest's checkpoint segment is missing")
    last_index, last_path = segments[-1]
    tail.segment = last_index
    stat = last_path.stat()
    tail.size = stat.st_size
    tail.day = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%d")
    return tail


def _advance(tail: Tail, record: dict[str, Any]) -> None:
    tail.seq = int(record["seq"])
    tail.head = str(record["entry_hash"])
    if record.get("type") == chain.CHECKPOINT:
        cp = record.get("checkpoint") or {}
        tail.counter = int(cp.get("counter", tail.counter))
        tail.sealed = bool(cp.get("sealed"))
        tail.records_since_checkpoint = 0
    else:
        tail.sealed = False
        tail.records_since_checkpoint += 1
