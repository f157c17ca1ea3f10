"""A request still running when the shutdown grace ends is cut honestly: a real `owstack serve` (metering on,
a SQLite ledger) in front of the fake upstream answering after 8 s (`slow-8`), with a 2-second grace.

* SIGTERM: the client gets a 503 `shutdown` in the API's shape (was: uvicorn's plain-text 500), the ledger
  records 503 (was: 200, the status the request had not reached), and no traceback is logged;
* SIGHUP: the retired configuration cuts the same way at the end of its grace, while its ledger is still
  open to record the cut (was: the request ran on after the old configuration had closed, answered 503 and
  left no row), and the process goes on serving with the new configuration."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from procs import Proc, run_gateway, run_upstream, upstream_backend, wait_for
from reliability.conftest import ledger_statuses
from reliability.test_background_reload import reload
from reliability.test_background_responses import upstream_calls

BODY = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with run_upstream(tmp_path_factory.mktemp("upstream")) as p:
        yield p
        p.stop(signal.SIGKILL)


def config(upstream: Proc, url: str) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "metering": {"enabled": True},
        "audit": {"enabled": False},
        "backends": {"slow": upstream_backend(upstream, "slow-8")},
        "layers": {"edge": {"backends": ["slow"]}},
        "server": {"shutdown_grace_s": 2, "drain_delay_s": 0},
    }


def in_flight(gw: Proc, upstream: Proc) -> tuple[threading.Thread, dict[str, Any]]:
    """A slow request, sent on a thread; returns once the upstream has it."""
    out: dict[str, Any] = {}
    before = upstream_calls(upstream, "slow-8")

    def call() -> None:
        try:
            r = httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60)
            out["status"], out["body"], out["id"] = r.status_code, r.json(), r.headers.get("x-request-id")
        except Exception as exc:  # what the test reports if the answer is not JSON
            out["error"] = repr(exc)

    thread = threading.Thread(target=call)
    thread.start()
    wait_for(lambda: upstream_calls(upstream, "slow-8") > before, "the upstream has the request")
    return thread, out


def assert_cut(out: dict[str, Any]) -> None:
    assert "error" not in out, out
    assert out["status"] == 503, out
    assert out["body"]["error"]["code"] == "shutdown", out


def test_sigterm_cuts_a_request_past_the_grace_with_a_503_recorded_as_such(fake_upstream: Proc, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    with run_gateway(tmp_path, config(fake_upstream, url)) as gw:
        thread, out = in_flight(gw, fake_upstream)
        gw.proc.send_signal(signal.SIGTERM)
        thread.join(60)
        gw.proc.wait(60)
        log = gw.log()
    assert_cut(out)
    assert ledger_statuses(url)[out["id"]] == 503
    assert "Traceback" not in log, log


def test_a_reload_cuts_the_old_configurations_request_past_the_grace_and_records_it(
    fake_upstream: Proc, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    cfg = config(fake_upstream, url)
    with run_gateway(tmp_path, cfg) as gw:
        thread, out = in_flight(gw, fake_upstream)
        reload(gw, tmp_path, cfg)  # every backend on `fresh`, which answers at once
        thread.join(60)
        assert_cut(out)
        after = httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=30)
        assert after.status_code == 200, after.text
        assert gw.proc.poll() is None
        wait_for(lambda: "previous configuration cut" in gw.log(), "the cut is logged")
        log = gw.log()
    assert ledger_statuses(url)[out["id"]] == 503
    assert "Traceback" not in log, log
