"""The audit log as the ledger's journal: one log, one fsync per request when both are on.

    note = member(pending, ctx)          event loop (meter stage): what the request's audit record adds for
                                         the ledger (`ctx.notes[NOTE]`, copied into the record as `ledger`)
    replay = AuditReplay(directory, keys, key_ids, own, limit)
    records = replay.missing(present)    the ledger's writer, at start: the records a dead process answered
                                         that are not in the database (`present(ids)` says which ids are)
    replay.checked()                     once those are in the database: remember how far each stream is done

Why: with metering and audit both on, each request used to wait for two durable writes, the ledger's
write-ahead log and the audit log: two files, two fdatasyncs, a thread more to wake per request (at one
connection about a fifth of the request's CPU time, docs/benchmarks.md). The audit record of a request
already holds nearly everything the ledger's row is made of (times, tenant, protocol, backend, model, status,
tokens, latency, attempts); with the few fields it lacks added (`ledger`: the row id, cached tokens, whether
the upstream reported the usage), it is the ledger record's durable copy, and the response waits for that
one fsync. The row itself still goes to the database from the writer's queue, in batches, as before.

What is not in the audit log in clear: the API key id. The record names the caller by its pseudonym
(`actor.pseudonym`, an HMAC under the audit log's pseudonym key); a replayed record gets its key id back by
computing the pseudonym of every key the key store knows (revoked ones too). A record whose pseudonym
matches no key (the caller had none, or the key was deleted since) is replayed without a key id.

Which records are replayed: a process's writer writes its queue in order, so in each life of a stream (one
process's records, from its `stream_opened` or `stream_resumed` record on) the records missing from the
database are the newest ones: the scan reads a stream from its end backwards, life by life, and in each
skips what precedes the newest record whose row is in the database; it stops where an earlier scan already
checked (`ledger.json` in the stream's directory, written once the replayed rows are in) or after `limit`
records (the writer's queue bound: no more can have been waiting). Streams another live
process holds are skipped (it writes its own records); this process's own stream is read up to where this
process resumed it. Replaying a record twice is harmless: rows keep their first id and the database ignores
one it already has.

The MCP gateway's tool calls journal the same way: their `mcp.request` records carry a `ledger` member with
the row's id only (the rest of the row, server, tool, status, latency, is the record's own), read back by
`from_mcp_record`. A request whose record goes to the write-ahead log instead (the audit writer not taking
records, the writer's queue full) has no `ledger` member and is the log's, as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from owstack.compliance import chain
from owstack.compliance.segments import (
    Line,
    iter_lines,
    list_segments,
    list_streams,
    read_json,
    try_lock,
    write_json_atomic,
)
from owstack.metering.record import Pending
from owstack.pipeline.context import Attempt
from owstack.types import Usage

if TYPE_CHECKING:
    from owstack.compliance.keys import AuditKeys
    from owstack.pipeline.context import RequestContext

log = logging.getLogger("owstack.metering.writer")

#: the request's `ctx.notes` entry the audit record copies as its `ledger` member
NOTE = "ledger"
#: the MCP gateway's request records (`owstack.mcp.records.REQUEST`)
MCP_REQUEST = "mcp.request"
#: the file in a stream's directory that says up to which sequence number its records are in the ledger
CHECKED = "ledger.json"
_MARK = b'"ledger":{'
_LIFE_STARTS = frozenset({chain.STREAM_OPENED, chain.STREAM_RESUMED})
_OPENED = f'"type":"{chain.STREAM_OPENED}"'.encode()
_RESUMED = f'"type":"{chain.STREAM_RESUMED}"'.encode()


def member(p: Pending, ctx: RequestContext) -> dict[str, Any]:
    """What the request's audit record must add for its ledger row to be rebuilt from it: the row's id,
    the cached tokens, whether the usage was reported (and, when not, an estimate: the text is not kept),
    and the model and engine where the record's own `model` object would name them differently."""
    u = p.usage
    out: dict[str, Any] = {"row_id": p.row_id, "cached_tokens": u.cached_tokens, "tokens_reported": u.reported}
    if not u.reported and not (u.prompt_tokens or u.completion_tokens) and (p.output_text or p.messages):
        from owstack.metering.tokens import Estimate

        counter = Estimate()
        out["estimated"] = [counter.prompt(p.messages or []), counter.text("".join(p.output_text))]
    if ctx.model is None:
        out["model"] = p.model
    if ctx.engine is None:
        out["engine"] = None
    return out


def _time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _seconds(ms: Any) -> float | None:
    return None if ms is None else float(ms) / 1000


def from_record(record: dict[str, Any], key_of: dict[str, str]) -> Pending:
    """The ledger record an audit record holds (KeyError, TypeError or ValueError when it holds none)."""
    if record["type"] == MCP_REQUEST:
        return from_mcp_record(record, key_of)
    led, model, actor = record["ledger"], record["model"], record["actor"]
    gen, out, outcome, inp = record.get("generation") or {}, record["output"], record["outcome"], record["input"]
    usage = Usage(
        int(inp["tokens"] or 0),
        int(out["tokens"] or 0),
        int(out.get("reasoning_tokens") or 0),
        int(led["cached_tokens"] or 0),
        bool(led["tokens_reported"]),
    )
    estimated = "estimated" in led
    if estimated:
        usage.prompt_tokens, usage.completion_tokens = (int(n) for n in led["estimated"])
    attempts = [Attempt(a["backend"], a["outcome"], _seconds(a["latency_ms"]) or 0.0) for a in outcome["attempts"]]
    return Pending(
        str(record["event_id"]),
        _time(record["start_time"]),
        actor["tenant"],
        key_of.get(actor.get("pseudonym") or ""),
        actor["protocol"],
        model.get("layer"),
        model.get("backend"),
        led["engine"] if "engine" in led else model.get("engine"),
        led["model"] if "model" in led else model.get("id"),
        bool(gen.get("stream", False)),
        int(outcome["status"]),
        outcome.get("error_code"),
        out.get("finish_reason"),
        bool(outcome.get("client_disconnected", False)),
        gen.get("reasoning_policy"),
        usage,
        _seconds(outcome.get("latency_ms")),
        _seconds(outcome.get("ttft_ms")),
        attempts,
        [],
        None,
        row_id=int(led["row_id"]),
        estimated=estimated,
    )


def from_mcp_record(record: dict[str, Any], key_of: dict[str, str]) -> Pending:
    """The ledger record of an MCP tool call (`owstack.mcp.records`: `_pending` makes the live one, `_record`
    the audit record read here): protocol and engine `mcp`, backend `mcp:<server>`, model the tool, no tokens."""
    mcp, actor, outcome = record["mcp"], record["actor"], record["outcome"]
    server = mcp.get("server")
    return Pending(
        str(record["event_id"]),
        _time(record["start_time"]),
        actor["tenant"],
        key_of.get(actor.get("pseudonym") or ""),
        "mcp",
        None,
        f"mcp:{server}" if server else None,
        "mcp",
        mcp.get("tool"),
        False,
        int(outcome["status"]),
        outcome.get("error_code"),
        None,
        False,
        None,
        Usage(reported=True),
        _seconds(outcome.get("latency_ms")),
        None,
        [],
        [],
        None,
        row_id=int(record["ledger"]["row_id"]),
    )


@dataclass
class _Stream:
    directory: Path
    #: the highest sequence number read (what `ledger.json` says once the replayed rows are in)
    seq: int = 0
    #: what `ledger.json` said: every record up to it was checked before
    checked: int = 0
    #: the audit records whose rows are missing, oldest first
    records: list[dict[str, Any]] = field(default_factory=list)


class AuditReplay:
    def __init__(
        self,
        directory: Path,
        keys: Callable[[], AuditKeys],
        key_ids: Callable[[], Iterable[str]],
        own: Callable[[], tuple[str, int] | None],
        limit: int,
    ) -> None:
        """`keys`: the audit log's keys (the pseudonym key); `key_ids`: every key id of the key store;
        `own`: this process's stream and the sequence number it resumed it at (None if it has none)."""
        self.directory = directory
        self._keys = keys
        self._key_ids = key_ids
        self._own = own
        self.limit = limit
        self._streams: list[_Stream] = []
        #: records read back from the audit log so far
        self.replayed = 0

    def missing(self, present: Callable[[list[int]], set[int]]) -> list[Pending]:
        """The records to write into the ledger, oldest first per stream. Raises what `present`, the key
        store or the file system raise (the writer retries later)."""
        own = self._own()
        streams: list[_Stream] = []
        for directory in list_streams(self.directory):
            if own is not None and directory.name == own[0]:
                stream = self._scan(directory, own[1], present)
            else:
                fd = try_lock(directory)
                if fd is None:  # another live process writes it
                    continue
                try:
                    stream = self._scan(directory, None, present)
                finally:
                    os.close(fd)
            if stream.seq > stream.checked:
                streams.append(stream)
        found = [r for s in streams for r in s.records]
        records = self._pending(found, self._key_map()) if found else []
        self._streams = streams
        self.replayed += len(records)
        if records:
            log.info("ledger: replaying %d record(s) the audit log holds and the database did not", len(records))
        return records

    def checked(self) -> None:
        """The records `missing` returned are in the database: note how far each stream is checked."""
        for stream in self._streams:
            try:
                write_json_atomic(stream.directory / CHECKED, {"seq": stream.seq})
            except OSError as exc:  # the next start reads a little more
                log.warning("ledger: cannot write %s (%s)", stream.directory / CHECKED, exc.strerror or exc)
        self._streams = []

    # -- reading -------------------------------------------------------------------------------------

    def _scan(self, directory: Path, upto: int | None, present: Callable[[list[int]], set[int]]) -> _Stream:
        """The stream's records with a `ledger` member whose rows are missing, up to `upto` and after what
        `ledger.json` says was checked: in each life of the stream (the records between one process's
        `stream_opened`/`stream_resumed` and the next), those newer than the newest present one. Life by life,
        because a process writes its own records in order, but a previous life's only if it could read them
        back first (a scan that failed for good leaves them, and the next start must still find them)."""
        try:
            checked = int((read_json(directory / CHECKED) or {}).get("seq", 0))
        except (ValueError, TypeError, AttributeError):
            checked = 0
        stream = _Stream(directory, checked=checked)
        missing: list[dict[str, Any]] = []  # newest first
        chunk: list[dict[str, Any]] = []
        done_with_life = False  # a present row was found in this life: its older records are in too

        def look() -> None:
            nonlocal done_with_life
            if chunk:
                there = present([r["ledger"]["row_id"] for r in chunk])
                for r in chunk:
                    if r["ledger"]["row_id"] in there:
                        done_with_life = True
                        break
                    missing.append(r)
                chunk.clear()

        for records in self._segments(directory, checked, upto, stream):
            for record in reversed(records):
                if record["seq"] <= checked:
                    break
                if record["type"] in _LIFE_STARTS:  # older records belong to the previous life
                    look()
                    done_with_life = False
                elif not done_with_life:
                    chunk.append(record)
                    if len(chunk) >= 500:
                        look()
            if len(missing) >= self.limit:
                log.warning("ledger: stream %s holds more than %d unfiled records", directory.name, self.limit)
                break
        look()
        stream.records = missing[::-1]
        return stream

    @staticmethod
    def _segments(directory: Path, checked: int, upto: int | None, stream: _Stream) -> Iterator[list[dict[str, Any]]]:
        """Each segment, newest first, as its records that carry a row id and those that start a life (up to
        sequence number `upto`), until one that starts at or before `checked`; `stream.seq` is set to the
        last sequence number."""
        for index, path in reversed(list_segments(directory)):
            try:
                lines = [line for line in iter_lines(path, index) if line.complete]
            except FileNotFoundError:  # pruned meanwhile
                continue
            if not stream.seq:
                stream.seq = _last_seq(lines, upto)
            records = []
            for line in lines:
                if _MARK not in line.raw and _OPENED not in line.raw and _RESUMED not in line.raw:
                    continue
                record = line.parse()
                if record is None or not isinstance(record.get("seq"), int):
                    continue
                if upto is not None and record["seq"] > upto:
                    break
                if _has_row(record) or record.get("type") in _LIFE_STARTS:
                    records.append(record)
            yield records
            first = _first_seq(lines)
            if first is not None and first <= checked:
                return

    def _key_map(self) -> dict[str, str]:
        keys = self._keys()
        return {keys.pseudonym_of("actor", key_id): key_id for key_id in self._key_ids()}

    @staticmethod
    def _pending(records: list[dict[str, Any]], key_of: dict[str, str]) -> list[Pending]:
        out = []
        for record in records:
            try:
                out.append(from_record(record, key_of))
            except (KeyError, TypeError, ValueError) as exc:
                log.error("ledger: audit record %s has an unreadable ledger member (%s); skipped", record["seq"], exc)
        return out


def _has_row(record: dict[str, Any]) -> bool:
    led = record.get("ledger")
    return isinstance(led, dict) and isinstance(led.get("row_id"), int) and not isinstance(led["row_id"], bool)


def _seq(line: Line) -> int | None:
    record = line.parse()
    seq = record.get("seq") if record is not None else None
    return seq if isinstance(seq, int) else None


def _first_seq(lines: list[Line]) -> int | None:
    for line in lines:
        seq = _seq(line)
        if seq is not None:
            return seq
    return None


def _last_seq(lines: list[Line], upto: int | None) -> int:
    for line in reversed(lines):
        seq = _seq(line)
        if seq is not None and (upto is None or seq <= upto):
            return seq
    return 0
