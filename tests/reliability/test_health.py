"""/healthz and /readyz when the audit log cannot be written (the whole gateway in process, a fake backend):
/readyz and the requests say 503 at once; /healthz stays 200 while the failure is young and turns 503 once it
has lasted `server.limits.unhealthy_after_s` (a restart is then the remedy); the writer recovers by itself
when the cause goes away, and every probe says 200 again."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx

from fakes.backend import FakeBackend, Reply
from owstack.assembly import assemble
from owstack.compliance.stage import AuditStage
from owstack.config.load import from_dict

BODY = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}


async def audit_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """The owstack_audit_* samples of GET /metrics."""
    text = (await http.get("/metrics")).text
    pairs = (line.split(" ") for line in text.splitlines() if line.startswith("owstack_audit_"))
    return {name: float(value) for name, value in pairs}


async def until(predicate: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def test_a_log_that_cannot_be_written_fails_readiness_at_once_and_liveness_once_it_lasts(tmp_path: Path) -> None:
    config = from_dict(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'owstack.db'}"},
            "metering": {"enabled": False},
            "audit": {"directory": str(tmp_path / "audit"), "keys_directory": str(tmp_path / "keys")},
            "backends": {"fake": {"engine": "vllm", "url": "http://fake.invalid/v1", "model": "fake-model"}},
            "server": {"limits": {"unhealthy_after_s": 1}},
        }
    )
    gw = assemble(config, backends={"fake": FakeBackend("fake", replies=[Reply(text="hi")])})

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        await gw.startup()
        audit = next(s for s in gw.services if isinstance(s, AuditStage))
        transport = httpx.ASGITransport(app=gw)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            out["served"] = (await http.post("/v1/chat/completions", json=BODY)).status_code
            out["metrics_served"] = await audit_metrics(http)
            assert audit.log is not None
            writer = audit.log.writer()
            full = os.open("/dev/full", os.O_WRONLY)  # the disk is full, and no new segment can be made
            os.close(writer._fd)  # type: ignore[arg-type]
            writer._fd = full
            blocker = writer._segment_path(writer._tail.segment + 1)
            blocker.mkdir()
            out["failed"] = (await http.post("/v1/chat/completions", json=BODY)).json()["error"]["code"]
            out["ready"] = (await http.get("/readyz")).status_code
            out["live_first"] = (await http.get("/healthz")).status_code  # the failure is young

            async def dead() -> bool:
                return (await http.get("/healthz")).status_code == 503

            out["live_later"] = await until(dead)
            out["refused"] = (await http.post("/v1/chat/completions", json=BODY)).json()["error"]["code"]
            out["metrics_refused"] = await audit_metrics(http)
            blocker.rmdir()  # the cause goes away: no restart needed

            async def back() -> bool:
                return (await http.get("/readyz")).status_code == 200

            out["back"] = await until(back)
            out["live_after"] = (await http.get("/healthz")).status_code
            out["served_after"] = (await http.post("/v1/chat/completions", json=BODY)).status_code
            out["metrics_after"] = await audit_metrics(http)
        await gw.shutdown()
        return out

    out = asyncio.run(main())
    assert out["served"] == 200
    assert out["failed"] == "audit_unavailable" and out["refused"] == "audit_unavailable"
    assert out["ready"] == 503 and out["live_first"] == 200 and out["live_later"] is True
    assert out["back"] is True and out["live_after"] == 200 and out["served_after"] == 200
    served, refused, after = out["metrics_served"], out["metrics_refused"], out["metrics_after"]
    # the opening records, config.loaded and the request, in at least one commit; then the failure is counted
    assert served["owstack_audit_up"] == 1 and served["owstack_audit_records_total"] >= 3
    assert 1 <= served["owstack_audit_commits_total"] <= served["owstack_audit_records_total"]
    assert served["owstack_audit_write_failures_total"] == 0
    assert refused["owstack_audit_up"] == 0 and refused["owstack_audit_write_failures_total"] >= 1
    assert (
        after["owstack_audit_up"] == 1 and after["owstack_audit_records_total"] > served["owstack_audit_records_total"]
    )
