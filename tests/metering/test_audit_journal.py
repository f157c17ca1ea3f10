"""The audit log as the ledger's journal (metering/audit_journal.py): with audit on, a request's ledger record
rides in its audit record and the write-ahead log stays empty; a process killed with SIGKILL leaves records the
next start reads back from the audit log (key ids recovered from their pseudonyms, tokens, models, attempts);
the scan stops at the newest row the database has, skips streams live processes hold, reads this process's
own stream only up to where it resumed it, and remembers how far it checked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from metering_helpers import BACKENDS, make_ctx, rows

from owstack.compliance.segments import try_lock
from owstack.compliance.stage import AuditStage
from owstack.compliance.verify import verify
from owstack.config.load import Config, from_dict
from owstack.metering.audit_journal import CHECKED, NOTE, AuditReplay, from_record, member
from owstack.metering.record import snapshot
from owstack.metering.stage import MeterStage
from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import Usage

KEYS = ["key-alpha", "key-beta"]


def raw_config(tmp: Path, url: str) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "backends": BACKENDS,
        "layers": {"coding": {"backends": ["gpu"], "fallback": ["edge-local"]}, "edge": {"backends": ["edge-local"]}},
        "metering": {"wal_directory": str(tmp / "wal"), "flush_interval_ms": 60_000, "batch_size": 1000},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys"), "node": "gw"},
    }


def stages(config: Config) -> tuple[MeterStage, AuditStage]:
    meter, audit = MeterStage(config), AuditStage(config)
    meter.journal_in(audit, key_ids=lambda: KEYS)
    return meter, audit


def contexts(prefix: str, n: int) -> list[RequestContext]:
    out = []
    for i in range(n):
        ctx = make_ctx(f"{prefix}{i:03d}", usage=Usage(10 + i, 20 + i, 0, i % 3, True))
        ctx.tenant, ctx.key_id = "acme", KEYS[i % 2] if i % 3 else None
        out.append(ctx)
    unreported = make_ctx(f"{prefix}unreported", output=["four score and seven"], backend="edge-local", layer="edge")
    unreported.attempts = [Attempt("edge-local", "upstream_error", 0.01), Attempt("edge-local", "ok", 0.2)]
    out.append(unreported)
    return out


async def serve(meter: MeterStage, audit: AuditStage, ctxs: list[RequestContext]) -> None:
    for ctx in ctxs:  # the pipeline's order: audit outermost, its `after` last
        await audit.before(ctx)
        await meter.after(ctx)
        await audit.after(ctx)


def audit_records(tmp: Path) -> list[dict[str, Any]]:
    lines = [
        line
        for seg in sorted((tmp / "audit" / "streams").glob("*/seg-*.jsonl"))
        for line in seg.read_bytes().splitlines()
    ]
    return [orjson.loads(line) for line in lines]


def test_the_audit_record_carries_the_ledger_record_and_the_log_stays_empty(tmp_path: Path) -> None:
    config = from_dict(raw_config(tmp_path, f"sqlite:///{tmp_path / 'l.db'}"))
    meter, audit = stages(config)
    ctxs = contexts("one-", 4)
    expected = {ctx.request_id: snapshot(ctx) for ctx in ctxs}

    async def main() -> None:
        await audit.start()
        await meter.start()
        await serve(meter, audit, ctxs)
        await meter.aclose()
        await audit.aclose()

    asyncio.run(main())
    assert meter.writer is not None and meter.writer.wal is not None and meter.writer.wal.committed_seq == 0
    requests = [r for r in audit_records(tmp_path) if r["type"] == "inference.request"]
    assert len(requests) == len(ctxs) and all(isinstance(r["ledger"]["row_id"], int) for r in requests)
    by_id = {row["request_id"]: row for row in rows(f"sqlite:///{tmp_path / 'l.db'}")}
    assert set(by_id) == set(expected)
    for record in requests:  # the audit record holds the row: the same id, tokens and key as the one written
        row = by_id[record["event_id"]]
        again = from_record(record, {audit.log.keys.pseudonym_of("actor", k): k for k in KEYS})  # type: ignore[union-attr]
        assert again.row_id == row["id"] and again.key_id == row["key_id"] and again.model == row["model"]
        if again.usage.reported:  # else an estimate (the text is not kept), the row counted with the vocabulary
            assert (again.usage.prompt_tokens, again.usage.cached_tokens) == (
                row["prompt_tokens"],
                row["cached_tokens"],
            )
        assert again.status == row["status"] and again.stream == row["stream"] and again.attempts


CHILD = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[2])
from owstack.config.load import from_dict
import test_audit_journal as t
config = from_dict(json.loads(open(sys.argv[1]).read()))
meter, audit = t.stages(config)
async def main():
    await audit.start()
    await meter.start()
    await t.serve(meter, audit, t.contexts("dead-", 20))
asyncio.run(main())
print("served", flush=True)
time.sleep(600)
"""


def kill_after_serving(tmp: Path, raw: dict[str, Any]) -> None:
    """A gateway-like process answers 21 requests (its ledger writer waits a minute before writing) and is
    killed with SIGKILL: its records are in its audit stream only."""
    path = tmp / "config.json"
    path.write_text(json.dumps(raw))
    env = {**os.environ, "OWSTACK_DATA_DIR": str(tmp)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(Path(__file__).parent)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"served"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)


def test_a_killed_process_records_are_read_back_from_the_audit_log(db_url: str, tmp_path: Path) -> None:
    raw = raw_config(tmp_path, db_url)
    kill_after_serving(tmp_path, raw)
    assert rows(db_url) == []  # its writer was still waiting to write
    assert not [p for p in (tmp_path / "wal").glob("*/*.wal") if p.stat().st_size and p.read_bytes().strip(b"\0")]
    config = from_dict(raw)
    meter, audit = stages(config)

    async def restart() -> None:
        await audit.start()
        await meter.start()
        assert meter.writer is not None
        assert await asyncio.to_thread(meter.writer.flush, 60)
        await meter.aclose()
        await audit.aclose()

    asyncio.run(restart())
    assert meter.writer is not None and meter.writer.replayed == 21
    got = {row["request_id"]: row for row in rows(db_url)}
    want = {ctx.request_id: ctx for ctx in contexts("dead-", 20)}
    assert set(got) == set(want)
    for request_id, ctx in want.items():
        row = got[request_id]
        assert row["key_id"] == ctx.key_id and row["tenant"] == ctx.tenant and row["backend"] == ctx.backend
        if ctx.usage.reported:
            assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (
                ctx.usage.prompt_tokens,
                ctx.usage.completion_tokens,
                ctx.usage.cached_tokens,
            )
    unreported = got["dead-unreported"]
    assert unreported["tokens_estimated"] and unreported["completion_tokens"] > 0 and unreported["attempts"] == 2
    assert json.loads((next((tmp_path / "audit" / "streams").iterdir()) / CHECKED).read_text())["seq"] > 21

    meter, audit = stages(from_dict(raw))  # the next start finds nothing more to read back

    async def again() -> None:
        await audit.start()
        await meter.start()
        assert meter.writer is not None and await asyncio.to_thread(meter.writer.flush, 60)
        await meter.aclose()
        await audit.aclose()

    asyncio.run(again())
    assert meter.writer.replayed == 0 and len(rows(db_url)) == 21
    assert verify(tmp_path / "audit").ok  # the chain, with its crash and two restarts, and ledger.json beside it


def write_journaled(tmp: Path, n: int, prefix: str) -> tuple[AuditStage, list[int]]:
    """`n` requests recorded by the audit stage with the meter stage's ledger member (no ledger writer: only
    the audit records are written), stopped cleanly; the row ids their records carry."""
    audit = AuditStage(from_dict(raw_config(tmp, "sqlite://")))

    async def main() -> None:
        await audit.start()
        for ctx in contexts(prefix, n)[:n]:
            await audit.before(ctx)
            ctx.notes[NOTE] = member(snapshot(ctx), ctx)
            await audit.after(ctx)
        await audit.aclose()

    asyncio.run(main())
    ids = [r["ledger"]["row_id"] for r in audit_records(tmp) if r["type"] == "inference.request"]
    return audit, ids


def replay_of(tmp: Path, audit: AuditStage, own: tuple[str, int] | None = None) -> AuditReplay:
    assert audit.log is not None
    return AuditReplay(tmp / "audit", lambda: audit.log.keys, lambda: KEYS, lambda: own, 1000)  # type: ignore[union-attr]


def test_the_scan_stops_at_the_newest_row_the_database_has_and_remembers_it(tmp_path: Path) -> None:
    audit, ids = write_journaled(tmp_path, 12, "scan-")

    def present(batch: list[int]) -> set[int]:
        return {ids[6]} & set(batch)  # the writer writes in order: what precedes a present row is in too

    replay = replay_of(tmp_path, audit)
    missing = replay.missing(present)
    assert [p.row_id for p in missing] == ids[7:]  # oldest first
    assert [p.request_id for p in missing] == [f"scan-{i:03d}" for i in range(7, 12)]
    replay.checked()
    again = replay_of(tmp_path, audit)
    assert again.missing(lambda batch: set()) == []  # checked up to the end: nothing read back twice


def test_streams_of_live_processes_are_skipped_and_the_own_stream_read_up_to_its_resumption(tmp_path: Path) -> None:
    audit, ids = write_journaled(tmp_path, 6, "own-")
    stream = next((tmp_path / "audit" / "streams").iterdir())
    fd = try_lock(stream)  # another process holds it
    assert fd is not None
    try:
        assert replay_of(tmp_path, audit).missing(lambda batch: set()) == []
    finally:
        os.close(fd)
    records = [r for r in audit_records(tmp_path) if r["type"] == "inference.request"]
    upto = records[3]["seq"]  # this process resumed the stream after the fourth request
    missing = replay_of(tmp_path, audit, own=(stream.name, upto)).missing(lambda batch: set())
    assert [p.row_id for p in missing] == ids[:4]


@pytest.mark.parametrize("field", ["ledger", "actor"])
def test_a_record_without_what_the_row_needs_is_not_one(field: str, tmp_path: Path) -> None:
    write_journaled(tmp_path, 1, "bad-")
    record = next(r for r in audit_records(tmp_path) if r["type"] == "inference.request")
    del record[field]
    with pytest.raises(KeyError):
        from_record(record, {})


def test_a_scan_that_fails_for_good_does_not_hold_up_the_ledger_and_the_next_start_reads_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    raw = raw_config(tmp_path, url)
    kill_after_serving(tmp_path, raw)

    def broken() -> list[str]:
        raise RuntimeError("a bug in the key store's listing")

    meter, audit = stages(from_dict(raw))
    assert meter.writer is not None and meter.writer.audit_replay is not None
    meter.writer.audit_replay._key_ids = broken
    late = contexts("late-", 2)

    async def run(ctxs: list[RequestContext]) -> bool:
        await audit.start()
        await meter.start()
        await serve(meter, audit, ctxs)
        assert meter.writer is not None
        flushed = await asyncio.to_thread(meter.writer.flush, 60)
        await meter.aclose()
        await audit.aclose()
        return flushed

    assert asyncio.run(run(late))  # this process's own records are written all the same
    assert {r["request_id"] for r in rows(url)} == {ctx.request_id for ctx in late}
    meter, audit = stages(from_dict(raw))  # the next start reads the dead process's records back
    assert asyncio.run(run([]))
    assert meter.writer is not None and meter.writer.replayed == 21 and len(rows(url)) == 24
