"""`owstack audit export`: the records of a time window, for an auditor, as JSON lines or CSV.

Records are exported as stored (hashes, pseudonyms, ciphertext; never decrypted content), merged across
streams by time. CSV flattens the fields an auditor filters on into columns; the rest of each record is
kept in the `record` column as canonical JSON, so nothing is lost.
"""

from __future__ import annotations

import csv
import heapq
from collections.abc import Iterable, Iterator
from typing import IO, Any

from owstack.compliance import chain
from owstack.compliance.segments import iter_lines, list_segments, list_streams

CSV_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("time", ("time",)),
    ("stream", ("stream",)),
    ("seq", ("seq",)),
    ("type", ("type",)),
    ("event_id", ("event_id",)),
    ("start_time", ("start_time",)),
    ("end_time", ("end_time",)),
    ("system_id", ("system", "id")),
    ("gateway_version", ("system", "version")),
    ("node", ("system", "node")),
    ("tenant", ("actor", "tenant")),
    ("actor_pseudonym", ("actor", "pseudonym")),
    ("app", ("actor", "app")),
    ("model_id", ("model", "id")),
    ("model_version", ("model", "version")),
    ("weights_digest", ("model", "weights_digest")),
    ("layer", ("model", "layer")),
    ("backend", ("model", "backend")),
    ("jurisdiction", ("model", "jurisdiction")),
    ("input_hmac", ("input", "hmac")),
    ("input_tokens", ("input", "tokens")),
    ("output_hmac", ("output", "hmac")),
    ("output_tokens", ("output", "tokens")),
    ("finish_reason", ("output", "finish_reason")),
    ("status", ("outcome", "status")),
    ("error_code", ("outcome", "error_code")),
    ("latency_ms", ("outcome", "latency_ms")),
    ("output_marked", ("transparency", "output_marked")),
    ("retention_expires", ("retention", "expires")),
    ("legal_hold", ("retention", "legal_hold")),
    ("content_key_id", ("key_ids", "content")),
    ("prev_hash", ("prev_hash",)),
    ("entry_hash", ("entry_hash",)),
)


def _stream_records(segments: list[tuple[int, Any]]) -> Iterator[dict[str, Any]]:
    for index, path in segments:
        for line in iter_lines(path, index):
            if line.complete:
                record = line.parse()
                if record is not None and isinstance(record.get("time"), str):
                    yield record


def records(
    directory: Any, *, since: str | None = None, until: str | None = None, types: Iterable[str] = ()
) -> Iterator[dict[str, Any]]:
    """Records with `since <= time < until` (ISO 8601 UTC strings), merged across streams by time."""
    prefixes = tuple(types)

    def keep(r: dict[str, Any]) -> bool:
        t = r["time"]
        if (since and t < since) or (until and t >= until):
            return False
        return not prefixes or str(r.get("type", "")).startswith(prefixes)

    streams = [filter(keep, _stream_records(list_segments(d))) for d in list_streams(directory)]
    yield from heapq.merge(*streams, key=lambda r: (r["time"], str(r.get("stream")), int(r.get("seq", 0))))


def write_jsonl(items: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    n = 0
    for record in items:
        out.write(chain.canonical(record) + b"\n")
        n += 1
    return n


def _get(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return chain.canonical(value).decode()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formula injection in spreadsheets


def write_csv(items: Iterable[dict[str, Any]], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for name, _ in CSV_COLUMNS] + ["record"])
    n = 0
    for record in items:
        writer.writerow([_cell(_get(record, path)) for _, path in CSV_COLUMNS] + [_cell(record)])
        n += 1
    return n
