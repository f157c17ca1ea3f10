"""A tool call's ledger record is durable before its answer (as a `/v1` request's). With the audit log
journaling the ledger's (as the gateway assembles it: `MeterStage.journal_in`), it rides in the call's
`mcp.request` audit record, fsynced by the time `handling.handle` returns, and the write-ahead log stays
empty; a process killed then has its calls' rows rebuilt from those records at the next start. Without it, in
the ledger's write-ahead log, fsynced, beside the call's audit record; a log that cannot be written fails the
call closed (-32067 `ledger_unavailable`) and the next call is recorded again. The record keeps its row id
through either, so a replay never makes a second row. (The kill -9 test of the running gateway is
tests/reliability/test_kill9_mcp.py.)"""

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
import sqlalchemy as sa
from mcp.shared.exceptions import MCPError

from owstack import storage
from owstack.compliance.stage import AuditStage
from owstack.config.load import from_dict
from owstack.errors import PermissionDenied
from owstack.mcp.errors import LEDGER
from owstack.mcp.handling import handle
from owstack.mcp.metrics import McpMetrics
from owstack.mcp.policy import OPEN_POLICY, Caller
from owstack.mcp.records import McpRequest, Recorder, _pending
from owstack.metering.audit_journal import from_record
from owstack.metering.journal import catch_up
from owstack.metering.record import Pending, from_wal, wal_payload
from owstack.metering.stage import MeterStage
from owstack.metering.wal import read_segment


def raw_config(tmp: Path) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        # the writer holds its records a minute: what is in the log is there because the call put it there
        "metering": {"wal_directory": str(tmp / "wal"), "flush_interval_ms": 60_000, "batch_size": 1000},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys")},
    }


def logged(tmp: Path) -> dict[str, Pending]:
    """The records in the write-ahead log's files as they are on disk now."""
    out = {}
    for segment in sorted((tmp / "wal").glob("*/*.wal")):
        for payload in read_segment(segment):
            record = from_wal(payload)
            out[record.request_id] = record
    return out


async def call(recorder: Recorder, request_id: str, tool: str = "read", key_id: str | None = "key-1") -> Any:
    caller = Caller("acme", key_id, OPEN_POLICY, request_id)

    async def work(req: McpRequest) -> dict[str, Any]:
        req.server, req.arguments = "files", {"path": "/tmp/x"}
        if tool == "forbidden":
            raise PermissionDenied("not this one", code="tool_not_allowed")
        return {"content": [{"type": "text", "text": "hello"}]}

    return await handle(recorder, caller, "tools/call", f"files.{tool}", work, lambda r: 5)


def test_the_tool_calls_record_is_in_the_log_before_the_answer(tmp_path: Path) -> None:
    config = from_dict(raw_config(tmp_path))
    meter, audit = MeterStage(config), AuditStage(config)
    seen: dict[str, dict[str, Pending]] = {}

    async def main() -> None:
        await audit.start()
        await meter.start()
        recorder = Recorder(McpMetrics(frozenset({"acme"}), frozenset({"files"})), audit=audit, meter=meter)
        try:
            for i in range(3):
                await call(recorder, f"mcp-durable-{i}")
                seen[f"mcp-durable-{i}"] = logged(tmp_path)  # right after the answer, before anything else runs
        finally:
            await meter.aclose()
            await audit.aclose()

    asyncio.run(main())
    for request_id, records in seen.items():
        record = records.get(request_id)
        assert record is not None, f"{request_id} answered before its ledger record was in the write-ahead log"
        assert (record.protocol, record.backend, record.engine, record.model) == (
            "mcp",
            "mcp:files",
            "mcp",
            "files.read",
        )
        assert (record.tenant, record.key_id, record.status, record.error_code) == ("acme", "key-1", 200, None)
        assert record.row_id != 0  # given once: a replay of a record the database has is ignored there


def test_a_log_that_cannot_be_written_fails_the_call_closed(tmp_path: Path) -> None:
    config = from_dict(raw_config(tmp_path))
    meter, audit = MeterStage(config), AuditStage(config)

    async def main() -> tuple[MCPError, Any]:
        await audit.start()
        await meter.start()
        recorder = Recorder(McpMetrics(frozenset({"acme"}), frozenset({"files"})), audit=audit, meter=meter)
        try:
            await call(recorder, "mcp-ok")  # opens a segment
            wal = meter.writer.wal if meter.writer is not None else None
            assert wal is not None and wal._fd is not None
            os.close(wal._fd)  # its file descriptor goes bad (as after an I/O error): the next write fails
            with pytest.raises(MCPError) as refused:
                await call(recorder, "mcp-unrecorded")
            return refused.value, await call(recorder, "mcp-again")  # the next batch starts a new segment
        finally:
            await meter.aclose()
            await audit.aclose()

    refused, again = asyncio.run(main())
    assert refused.code == LEDGER
    assert refused.error.data == {"code": "ledger_unavailable", "status": 503}
    assert again == {"content": [{"type": "text", "text": "hello"}]}
    with storage.engine(f"sqlite:///{tmp_path / 'owstack.db'}").connect() as conn:  # flushed at close
        assert {"mcp-ok", "mcp-again"} <= {r[0] for r in conn.execute(sa.text("SELECT request_id FROM ledger"))}


def test_a_tool_calls_record_survives_the_log() -> None:
    req = McpRequest("mcp-rt", "acme", "key-1", None, "tools/call", server="files", name="files.read")
    req.fail("upstream_-32000", 502, refused=False)
    req.latency_s = 0.25
    record = _pending(req)
    assert record.row_id != 0
    again = from_wal(wal_payload(record))
    for name in Pending.__slots__:
        if name not in ("seq", "messages"):
            assert getattr(again, name) == getattr(record, name), name


KEYS = ["key-1", "key-2"]


def journaling(config: Any) -> tuple[MeterStage, AuditStage, Recorder]:
    """The stages as the gateway assembles them with audit on: the audit log journals the ledger's."""
    meter, audit = MeterStage(config), AuditStage(config)
    meter.journal_in(audit, key_ids=lambda: KEYS)
    return meter, audit, Recorder(McpMetrics(frozenset({"acme"}), frozenset({"files"})), audit=audit, meter=meter)


async def calls(recorder: Recorder, prefix: str) -> None:
    await call(recorder, f"{prefix}read")
    await call(recorder, f"{prefix}anonymous", key_id=None)
    with pytest.raises(MCPError):
        await call(recorder, f"{prefix}forbidden", tool="forbidden")  # refused: a row all the same (403)


def audit_records(tmp: Path) -> list[dict[str, Any]]:
    segments = sorted((tmp / "audit" / "streams").glob("*/seg-*.jsonl"))
    return [orjson.loads(line) for seg in segments for line in seg.read_bytes().splitlines()]


def ledger_rows(url: str) -> dict[str, dict[str, Any]]:
    catch_up(url)
    with storage.engine(url).connect() as conn:
        found = {r._mapping["request_id"]: dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM ledger"))}
    storage.dispose(url)
    return found


def test_with_the_audit_log_on_the_record_rides_in_the_calls_audit_record(tmp_path: Path) -> None:
    config = from_dict(raw_config(tmp_path))
    meter, audit, recorder = journaling(config)
    on_disk: dict[str, list[dict[str, Any]]] = {}

    async def main() -> None:
        await audit.start()
        await meter.start()
        try:
            await call(recorder, "j-first")
            on_disk["j-first"] = audit_records(tmp_path)  # right after the answer
            await calls(recorder, "j-")
        finally:
            await meter.aclose()
            await audit.aclose()

    asyncio.run(main())
    assert any(r.get("event_id") == "j-first" and "ledger" in r for r in on_disk["j-first"])
    assert meter.writer is not None and meter.writer.wal is not None and meter.writer.wal.committed_seq == 0
    assert not logged(tmp_path)  # nothing in the write-ahead log: one fsync per call
    records = {r["event_id"]: r for r in audit_records(tmp_path) if r["type"] == "mcp.request"}
    rows = ledger_rows(f"sqlite:///{tmp_path / 'owstack.db'}")
    assert set(rows) == set(records) == {"j-first", "j-read", "j-anonymous", "j-forbidden"}
    assert audit.log is not None
    key_of = {audit.log.keys.pseudonym_of("actor", k): k for k in KEYS}
    for request_id, record in records.items():  # the audit record rebuilds the row the writer wrote
        again, row = from_record(record, key_of), rows[request_id]
        assert again.row_id == row["id"], request_id
        for name in ("tenant", "key_id", "protocol", "backend", "engine", "model", "status", "error_code"):
            assert getattr(again, name) == row[name], (request_id, name)
    assert rows["j-forbidden"]["status"] == 403 and rows["j-anonymous"]["key_id"] is None


CHILD = """
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[2])
from owstack.config.load import from_dict
import test_durable_calls as t
meter, audit, recorder = t.journaling(from_dict(json.loads(open(sys.argv[1]).read())))
async def main():
    await audit.start()
    await meter.start()
    await t.calls(recorder, "dead-")
asyncio.run(main())
print("served", flush=True)
time.sleep(600)
"""


def test_a_killed_process_tool_calls_are_read_back_from_the_audit_log(tmp_path: Path) -> None:
    raw = raw_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    env = {**os.environ, "OWSTACK_DATA_DIR": str(tmp_path)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "config.json"), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:  # three calls answered (its ledger writer waits a minute before writing), then SIGKILL
        assert child.stdout is not None and child.stdout.readline().strip() == b"served"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    assert not logged(tmp_path)
    meter, audit, _ = journaling(from_dict(raw))

    async def restart() -> None:
        await audit.start()
        await meter.start()
        assert meter.writer is not None and await asyncio.to_thread(meter.writer.flush, 60)
        await meter.aclose()
        await audit.aclose()

    asyncio.run(restart())
    assert meter.writer is not None and meter.writer.replayed == 3
    rows = ledger_rows(url)
    assert set(rows) == {"dead-read", "dead-anonymous", "dead-forbidden"}
    assert (rows["dead-read"]["key_id"], rows["dead-read"]["model"], rows["dead-read"]["backend"]) == (
        "key-1",
        "files.read",
        "mcp:files",
    )
    assert rows["dead-forbidden"]["status"] == 403 and rows["dead-forbidden"]["error_code"] == "tool_not_allowed"
