"""Retention: remove whole segments older than the retention period, keeping the chain verifiable.

For each stream, the oldest segments whose every record is older than the cut-off, holds no record under
legal hold (the record's own flag, or a tenant now on `audit.legal_hold_tenants`) and is not the stream's
newest segment, are removed. Before deleting anything a signed marker, `pruned.json`, is written: where
the kept chain starts (first segment, first sequence number, and the hash the first kept record links
to). `audit verify` starts each pruned stream from that signed anchor. A global `audit.legal_hold` stops
pruning altogether.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from owstack.compliance import chain
from owstack.compliance.keys import AuditKeys
from owstack.compliance.segments import (
    PRUNED,
    fsync_dir,
    iter_lines,
    list_segments,
    list_streams,
    read_json,
    segment_name,
    write_json_atomic,
)


@dataclass(slots=True)
class StreamPrune:
    stream: str
    directory: Path
    remove: list[Path] = field(default_factory=list)
    records: int = 0
    first_segment: int = 0
    first_seq: int = 0
    anchor_prev_hash: str = ""
    kept_by_hold: bool = False


def cutoff_for(retention_days: int, now: datetime | None = None) -> str:
    when = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    return chain.iso(when.timestamp())


def _segment_prunable(path: Path, index: int, cutoff: str, hold: frozenset[str]) -> tuple[bool, int, bool]:
    """(all records older than the cut-off and none held, record count, held)."""
    n = 0
    for line in iter_lines(path, index):
        record = line.parse() if line.complete else None
        if record is None:
            return False, n, False
        n += 1
        retention = record.get("retention") or {}
        tenant = (record.get("actor") or {}).get("tenant")
        if retention.get("legal_hold") or (tenant is not None and tenant in hold):
            return False, n, True
        if str(record.get("time", "")) >= cutoff:
            return False, n, False
    return True, n, False


def _first_record(path: Path, index: int) -> dict[str, Any] | None:
    for line in iter_lines(path, index):
        return line.parse() if line.complete else None
    return None


def plan(directory: Path, *, cutoff: str, hold_tenants: frozenset[str] = frozenset()) -> list[StreamPrune]:
    out = []
    for stream_dir in list_streams(directory):
        p = StreamPrune(stream=stream_dir.name, directory=stream_dir)
        segments = list_segments(stream_dir)
        for i, (index, path) in enumerate(segments[:-1]):
            ok, n, held = _segment_prunable(path, index, cutoff, hold_tenants)
            if not ok:
                p.kept_by_hold = held
                break
            next_index, next_path = segments[i + 1]
            first = _first_record(next_path, next_index)
            if first is None:
                break
            p.remove.append(path)
            p.records += n
            p.first_segment = segments[i + 1][0]
            p.first_seq, p.anchor_prev_hash = int(first["seq"]), str(first["prev_hash"])
        if p.remove:
            out.append(p)
    return out


def apply(plans: list[StreamPrune], keys: AuditKeys, *, cutoff: str) -> None:
    """Write each stream's signed marker, then delete its pruned segments."""
    for p in plans:
        previous = read_json(p.directory / PRUNED) or {}
        removed = [*previous.get("removed", []), *(path.name for path in p.remove)]
        marker: dict[str, Any] = {
            "format": chain.FORMAT,
            "stream": p.stream,
            "first_segment": p.first_segment,
            "first_seq": p.first_seq,
            "anchor_prev_hash": p.anchor_prev_hash,
            "removed": sorted(set(removed)),
            "cutoff": cutoff,
            "time": chain.iso(time.time()),
            "key_id": keys.signing_id,
        }
        marker["signature"] = chain.b64(keys.signing.sign(chain.canonical(marker)))
        write_json_atomic(p.directory / PRUNED, marker)
        fsync_dir(p.directory)
        for path in p.remove:
            path.unlink(missing_ok=True)
        fsync_dir(p.directory)


def describe(p: StreamPrune) -> str:
    names = f"{p.remove[0].name}..{p.remove[-1].name}" if len(p.remove) > 1 else p.remove[0].name
    kept = f"kept from {segment_name(p.first_segment)} (seq {p.first_seq})"
    return f"{p.stream}: {len(p.remove)} segment(s) ({names}), {p.records} records; {kept}"
