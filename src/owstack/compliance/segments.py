"""The on-disk layout of the audit log, and reading it back.

<audit.directory>/
  public-keys/<key id>.pub          Ed25519 public keys (verify needs no secret)
  streams/<node>-<n>/               one hash chain per writer at a time (a flock on `lock` claims it)
    lock
    manifest.json                   the stream's latest signed checkpoint (and whether it sealed the stream)
    pruned.json                     signed marker left by retention pruning: where the kept chain starts
    seg-000001.jsonl                segments: one canonical JSON record per line, append-only
    seg-000002.jsonl
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

STREAMS = "streams"
MANIFEST = "manifest.json"
PRUNED = "pruned.json"
LOCK = "lock"
_SEGMENT = re.compile(r"^seg-(\d{6})\.jsonl$")


def segment_name(index: int) -> str:
    return f"seg-{index:06d}.jsonl"


def list_segments(stream_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for path in stream_dir.iterdir():
        m = _SEGMENT.match(path.name)
        if m:
            out.append((int(m.group(1)), path))
    return sorted(out)


def list_streams(directory: Path) -> list[Path]:
    root = directory / STREAMS
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir())


@dataclass(slots=True)
class Line:
    segment: int
    offset: int
    raw: bytes
    complete: bool  # ended with a newline

    def parse(self) -> dict[str, Any] | None:
        try:
            value = orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


def iter_lines(path: Path, segment: int, start: int = 0) -> Iterator[Line]:
    """Every line of a segment from byte `start`; the last one may be incomplete (a torn write)."""
    with path.open("rb") as fh:
        fh.seek(start)
        offset = start
        for raw in fh:
            complete = raw.endswith(b"\n")
            yield Line(segment, offset, raw[:-1] if complete else raw, complete)
            offset += len(raw)


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON file, or None when missing; ValueError when unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ValueError(f"{path.name} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return value


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def try_lock(stream_dir: Path) -> int | None:
    """Claim a stream: an open fd holding an exclusive flock, or None when another writer holds it."""
    fd = os.open(stream_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def is_live(stream_dir: Path) -> bool:
    """Whether a writer holds the stream now (its tail is then expected to be unsealed)."""
    if not (stream_dir / LOCK).exists():
        return False
    try:
        fd = try_lock(stream_dir)
    except OSError:
        return False
    if fd is None:
        return True
    os.close(fd)
    return False
