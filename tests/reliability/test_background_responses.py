"""Background responses (`POST /v1/responses` with `background: true`) when the gateway running one dies,
shuts down, or is not the replica the client talks to: real `owstack serve` processes on one database (a
SQLite file, and PostgreSQL in a database of the test's own), the fake OpenAI-compatible upstream answering
after a delay (`slow-N`).

* killed with SIGKILL mid-response, restarted: once the lease has run out, GET says `failed` (server_error);
* SIGTERM: a response that ends within `server.shutdown_grace_s` is `completed`, one that does not is
  `failed` with code `shutdown` (not `cancelled`: the client asked nothing);
* two replicas: a cancel (or delete) sent to the one that does not run the response stops it on the other;
  reads on a replica never fail a response whose owner is alive and renewing its lease.

The lease is 3 s (a heartbeat every second); every wait is on a condition, with a generous timeout."""

from __future__ import annotations

import signal
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from owstack import storage
from procs import Proc, run_gateway, run_gateways, run_upstream, wait_for

LEASE_S = 3.0
JSON_TYPE = {"content-type": "application/json"}
#: the layers' backends: the fake upstream answers after this many seconds
SLOW = {"coding": "slow-60", "multimodal": "slow-8", "edge": "slow-1"}


@pytest.fixture(scope="module")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """The module's own upstream, killed at the end: a graceful stop would wait for its 60-second answers."""
    with run_upstream(tmp_path_factory.mktemp("upstream")) as p:
        yield p
        p.stop(signal.SIGKILL)


def config(upstream: Proc, url: str, **server: Any) -> dict[str, Any]:
    backends = {
        layer: {"engine": "vllm", "url": upstream.base_url, "model": model, "jurisdiction": "local"}
        for layer, model in SLOW.items()
    }
    return {
        "storage": {"url": url},
        "audit": {"enabled": False},
        "metering": {"enabled": False},
        "backends": backends,
        "layers": {layer: {"backends": [layer]} for layer in SLOW},
        "responses": {"background_lease_s": LEASE_S},
        "server": {"shutdown_grace_s": 2, **server},  # a gateway stopped by the test cuts its responses soon
    }


def upstream_calls(upstream: Proc, model: str) -> int:
    return int(httpx.get(upstream.url + "/stats", timeout=10).json()["requests"].get(model, 0))


def start(gw: Proc, upstream: Proc, layer: str) -> str:
    """A background response on `layer`, once the upstream has its request (the task is running)."""
    before = upstream_calls(upstream, SLOW[layer])
    r = httpx.post(gw.base_url + "/responses", json={"model": layer, "input": "go", "background": True}, timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    wait_for(lambda: upstream_calls(upstream, SLOW[layer]) > before, f"the upstream called for {layer}")
    return str(r.json()["id"])


def get(gw: Proc, rid: str) -> httpx.Response:
    return httpx.get(f"{gw.base_url}/responses/{rid}", timeout=30)


def ended(gw: Proc, rid: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll GET until the response has ended; its body."""

    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = get(gw, rid).json()
        return body if body["status"] not in ("queued", "in_progress") else None

    found: dict[str, Any] = wait_for(check, f"{rid} ended", timeout)
    return found


def stored(url: str, rid: str) -> dict[str, Any]:
    """The row as stored (read straight from the database)."""
    try:
        with storage.engine(url).connect() as conn:
            row = conn.execute(sa.text("SELECT status, body FROM responses WHERE id = :id"), {"id": rid}).one()
    finally:
        storage.dispose(url)
    body: dict[str, Any] = orjson.loads(zlib.decompress(row.body))
    assert body["status"] == row.status
    return body


def test_a_response_whose_gateway_was_killed_reads_failed_once_its_lease_ran_out(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    cfg = config(fake_upstream, ledger_url)
    with run_gateway(tmp_path, cfg) as gw:
        rid = start(gw, fake_upstream, "coding")
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(30)
    assert stored(ledger_url, rid)["status"] == "in_progress"  # nobody left to end it
    with run_gateway(tmp_path, cfg) as again:
        body = ended(again, rid)
        items = httpx.get(f"{again.base_url}/responses/{rid}/input_items", timeout=30)
    assert body["status"] == "failed", body
    assert body["error"]["code"] == "server_error" and "stopped before it finished" in body["error"]["message"]
    assert items.status_code == 200 and [i["role"] for i in items.json()["data"]] == ["user"], items.text
    assert stored(ledger_url, rid)["status"] == "failed"  # stored so, not only answered so


def test_sigterm_lets_a_response_end_within_the_grace_and_fails_one_that_does_not_as_shutdown(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    cfg = config(fake_upstream, ledger_url, shutdown_grace_s=6)
    with run_gateway(tmp_path, cfg) as gw:
        long = start(gw, fake_upstream, "coding")  # 60 s: longer than the grace
        short = start(gw, fake_upstream, "edge")  # 1 s: within it
        gw.proc.send_signal(signal.SIGTERM)
        assert gw.proc.wait(60) in (0, -signal.SIGTERM), gw.log()  # uvicorn re-raises the signal it caught
    cut, done = stored(ledger_url, long), stored(ledger_url, short)
    assert cut["status"] == "failed" and cut["error"]["code"] == "shutdown", cut
    assert "shut down" in cut["error"]["message"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["text"] == "hello from slow-1", done


def test_a_cancel_or_delete_sent_to_another_replica_stops_the_response(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    with run_gateways(tmp_path, config(fake_upstream, ledger_url), 2) as (owner, other):
        rid = start(owner, fake_upstream, "coding")
        r = httpx.post(f"{other.base_url}/responses/{rid}/cancel", headers=JSON_TYPE, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text  # the row as it is, for now
        body = ended(other, rid)
        assert body["status"] == "cancelled", body
        assert get(owner, rid).json()["status"] == "cancelled"

        gone = start(owner, fake_upstream, "coding")
        r = httpx.delete(f"{other.base_url}/responses/{gone}", timeout=30)
        assert r.status_code == 200 and r.json()["deleted"] is True, r.text
        wait_for(lambda: f"background response {gone}: deleted by a request to another" in owner.log(), "stopped")
        wait_for(lambda: f"background response {gone}: deleted or ended elsewhere" in owner.log(), "task ended")
        assert get(owner, gone).status_code == 404 and get(other, gone).status_code == 404  # not written back


def test_reads_on_another_replica_never_fail_a_response_whose_owner_is_alive(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    """8 s of work, more than two leases: the other replica reads it all along, then reads it completed."""
    with run_gateways(tmp_path, config(fake_upstream, ledger_url), 2) as (owner, other):
        rid = start(owner, fake_upstream, "multimodal")
        seen = set()

        def check() -> bool:
            seen.add(get(other, rid).json()["status"])
            items = httpx.get(f"{other.base_url}/responses/{rid}/input_items", timeout=30)
            assert items.status_code == 200
            return bool(seen - {"queued", "in_progress"})

        wait_for(check, "the response ended", timeout=60)
    assert seen == {"in_progress", "completed"}, seen
