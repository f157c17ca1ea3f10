"""A tool call's ledger record is durable before its answer (as a `/v1` request's): in the ledger's write-ahead
log, fsynced, by the time `handling.handle` returns, beside the call's audit record; a log that cannot be
written fails the call closed (-32067 `ledger_unavailable`) and the next call is recorded again. The record
keeps its row id through the log, so a replay never makes a second row. (The kill -9 test of the running
gateway is tests/reliability/test_kill9_mcp.py.)"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from mcp.shared.exceptions import MCPError

from owstack import storage
from owstack.compliance.stage import AuditStage
from owstack.config.load import from_dict
from owstack.mcp.errors import LEDGER
from owstack.mcp.handling import handle
from owstack.mcp.metrics import McpMetrics
from owstack.mcp.policy import OPEN_POLICY, Caller
from owstack.mcp.records import McpRequest, Recorder, _pending
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


async def call(recorder: Recorder, request_id: str, tool: str = "read") -> Any:
    caller = Caller("acme", "key-1", OPEN_POLICY, request_id)

    async def work(req: McpRequest) -> dict[str, Any]:
        req.server, req.arguments = "files", {"path": "/tmp/x"}
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
