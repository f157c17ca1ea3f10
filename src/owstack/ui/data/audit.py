"""What the console reads from the audit log itself: each stream's last signed checkpoint (its manifest), and
the newest records of a kind (guard decisions, admin events, one request's record) from the log's tail.

The log can be large, so the console reads at most `TAIL_BYTES` from the end of each stream and parses only
the lines that mention what it looks for (a byte search first). The pages say how far back that reached.
A full check of every record is `verify` (`owstack.ui.data.verify`), run on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from owstack.compliance.segments import MANIFEST, list_segments, list_streams, read_json

#: bytes read from the end of each stream, at most
TAIL_BYTES = 4 * 1024 * 1024
#: records returned per question, at most
LIMIT = 200


@dataclass
class Tail:
    records: list[dict[str, Any]]
    #: the oldest record time the read reached (ISO), per the streams' tails
    since: str | None
    streams: int


def checkpoints(directory: Path) -> list[dict[str, Any]]:
    """Per stream: its last signed checkpoint (seq, time, sealed, key id) from the manifest."""
    out = []
    for stream in list_streams(directory):
        try:
            manifest = read_json(stream / MANIFEST)
        except ValueError as exc:
            out.append({"stream": stream.name, "error": str(exc)})
            continue
        cp = (manifest or {}).get("checkpoint") or {}
        entry: dict[str, Any] = {
            "stream": stream.name,
            "seq": cp.get("seq"),
            "time": cp.get("time"),
            "sealed": cp.get("sealed"),
            "key_id": cp.get("key_id"),
            "counter": cp.get("counter"),
        }
        out.append(entry)
    return out


def _tail_lines(stream: Path, budget: int) -> list[bytes]:
    """Complete lines from the end of a stream's newest segments, `budget` bytes at most, oldest first."""
    chunks: list[bytes] = []
    for _, path in reversed(list_segments(stream)):
        if budget <= 0:
            break
        try:
            size = path.stat().st_size
            with path.open("rb") as fh:
                start = max(0, size - budget)
                fh.seek(start)
                data = fh.read(size - start)
        except OSError:
            continue
        budget -= len(data)
        if start > 0:
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else b""
        chunks.insert(0, data)
    lines: list[bytes] = []
    for data in chunks:
        lines.extend(line for line in data.split(b"\n") if line)
    return lines


def tail(directory: Path, needle: bytes, *, limit: int = LIMIT, budget: int = TAIL_BYTES) -> Tail:
    """The newest records (newest first) whose line contains `needle`, from each stream's tail."""
    found: list[dict[str, Any]] = []
    since: str | None = None
    streams = list_streams(directory)
    for stream in streams:
        lines = _tail_lines(stream, budget)
        if lines:
            first = _parse(lines[0])
            if first is not None and (since is None or str(first.get("time")) < since):
                since = str(first.get("time"))
        for line in reversed(lines):
            if needle in line:
                record = _parse(line)
                if record is not None:
                    found.append(record)
    found.sort(key=lambda r: str(r.get("time")), reverse=True)
    return Tail(found[:limit], since, len(streams))


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def guard_decisions(directory: Path) -> Tail:
    """Requests the guard flagged or blocked: their time, tenant, decision and categories (never text)."""
    got = tail(directory, b'"guardrail":{"')
    got.records = [r for r in got.records if isinstance(r.get("guardrail"), dict)]
    return got


def admin_events(directory: Path) -> Tail:
    return tail(directory, b'"type":"admin.', limit=50)


def request_record(directory: Path, request_id: str) -> dict[str, Any] | None:
    """The audit record of one request (by its request id), if it is in the tail."""
    needle = b'"event_id":' + orjson.dumps(request_id)
    got = tail(directory, needle, limit=1)
    return got.records[0] if got.records else None


def log_size(directory: Path) -> int:
    total = 0
    for stream in list_streams(directory):
        for _, path in list_segments(stream):
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
    return total
