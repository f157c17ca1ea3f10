"""The gateway while its stores are away (issue 14, item 5), as a real process with PostgreSQL behind a
TCP proxy: it starts without PostgreSQL, refuses what it cannot authenticate with a quick 503 (never a
hang, never a traceback), serves once the store is back, and files every record, refused ones included."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from owstack.metering.journal import catch_up
from owstack.tenancy.keys import KeyStore
from procs import Proc, run_gateway
from reliability.conftest import Database, gateway_config

pytestmark = pytest.mark.postgres


def ask(gw: Proc, key: str, request_id: str) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/chat/completions",
        json={"model": "edge", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}", "x-request-id": request_id},
        timeout=60,
    )


def ledger_ids(url: str) -> set[str]:
    import sqlalchemy as sa

    from owstack import storage

    catch_up(url)
    with storage.engine(url).connect() as conn:
        return {r[0] for r in conn.execute(sa.text("SELECT request_id FROM ledger"))}


def test_the_gateway_starts_without_postgresql_and_catches_up_when_it_returns(
    pg_behind_proxy: Database, fake_upstream: Proc, tmp_path: Path
) -> None:
    db = pg_behind_proxy
    key, _ = KeyStore(db.url).create("acme")  # made while the database was up; the gateway never saw it
    db.proxy.cut()
    config = gateway_config(tmp_path, fake_upstream.base_url, db.via)
    with run_gateway(tmp_path, config) as gw:  # started: /readyz answered 200 with the database down
        refused = ask(gw, key, "outage-refused-0001")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "key_store_unavailable"
        db.proxy.resume()
        served, deadline = None, time.monotonic() + 120
        for n in range(1000):  # the next probe finds it (backoff from 0.5 s); only bounds a failing run
            response = ask(gw, key, f"outage-served-{n:04d}")
            if response.status_code == 200:
                served = response.headers["x-request-id"]
                break
            assert response.status_code == 503 and time.monotonic() < deadline, response.text
            time.sleep(0.2)
        assert served is not None
        log = gw.log()
    assert "Traceback" not in log
    assert len(re.findall(r"keys store .* unreachable", log)) <= 2  # once at start, maybe one summary
    assert "reachable again" in log
    ids = ledger_ids(db.url)  # the gateway stopped: its ledger writer flushed into the database
    assert {"outage-refused-0001", served} <= ids
