"""Background responses across a SIGHUP reload: a real `owstack serve` process (one database: a SQLite file,
and PostgreSQL in a database of the test's own), the fake upstream answering after a delay (`slow-N`).

A reload assembles a new gateway beside the running one and retires the old one (api/app.py, `_retire`);
the old configuration's background responses get the shutdown grace (`server.shutdown_grace_s`, counted
from the reload), as at SIGTERM, while the process goes on serving with the new configuration:

* one that ends within the grace is `completed`, by the old configuration's backend;
* one that does not is `failed` with code `shutdown` (not `cancelled`, not left `in_progress`);
* meanwhile the retired gateway's heartbeat keeps its lease: reads, all served by the new configuration
  (another lease owner), never see it failed as lapsed, over more than two leases (3 s each).

The new configuration points every layer at the `fresh` backend (which answers at once), so an answer says
which configuration served it. Every wait is on a condition, with a generous timeout."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from procs import Proc, run_gateway, run_upstream, wait_for
from reliability.test_background_responses import LEASE_S, config, get, start, stored, upstream_calls


@pytest.fixture(scope="module")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """The module's own upstream, killed at the end: a graceful stop would wait for its 60-second answers."""
    with run_upstream(tmp_path_factory.mktemp("upstream")) as p:
        yield p
        p.stop(signal.SIGKILL)


def reload(gw: Proc, tmp: Path, cfg: dict[str, Any]) -> None:
    """Rewrite the gateway's config file with every layer on `fresh`, send SIGHUP, wait for the swap."""
    fresh = {**cfg, "backends": {name: {**b, "model": "fresh"} for name, b in cfg["backends"].items()}}
    path = tmp / f"owstack-{gw.port}.yaml"  # where run_gateway wrote it
    path.with_suffix(".tmp").write_text(yaml.safe_dump(fresh))
    path.with_suffix(".tmp").replace(path)
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in gw.log(), "the new configuration serves")


def answer(gw: Proc, client: httpx.Client | None = None) -> tuple[int, str]:
    """A plain (not background) response on `edge`: its status and text (says which configuration)."""
    body = {"model": "edge", "input": "hi"}
    post = client.post if client is not None else httpx.post
    r = post(gw.base_url + "/responses", json=body, timeout=30)
    text = r.json()["output"][0]["content"][0]["text"] if r.status_code == 200 else r.text
    return r.status_code, str(text)


def plain(gw: Proc, model: str) -> int | str:
    """A plain request that the test does not wait for: its status, or what ended it."""
    try:
        return httpx.post(gw.base_url + "/responses", json={"model": model, "input": "go"}, timeout=90).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


def poll(gw: Proc, rid: str, timeout: float = 60.0) -> tuple[list[str], dict[str, Any]]:
    """GET the response until it has ended: every status read on the way, and its end."""
    seen: list[str] = []
    last: dict[str, Any] = {}

    def check() -> bool:
        last.update(get(gw, rid).json())
        seen.append(last["status"])
        return last["status"] not in ("queued", "in_progress")

    wait_for(check, f"{rid} ended", timeout)
    return seen, last


def test_a_reload_lets_a_background_response_finish_within_the_grace_and_keeps_serving(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    cfg = config(fake_upstream, ledger_url, shutdown_grace_s=20)
    with run_gateway(tmp_path, cfg) as gw:
        stop = threading.Event()
        answers: list[tuple[int, str]] = []

        def trickle() -> None:  # plain requests across the reload
            with httpx.Client() as client:
                while not stop.is_set():
                    answers.append(answer(gw, client))

        rid = start(gw, fake_upstream, "multimodal")  # 8 s of work: more than two leases
        loader = threading.Thread(target=trickle)
        loader.start()
        try:
            reload(gw, tmp_path, cfg)
            assert get(gw, rid).json()["status"] == "in_progress"  # the reload came while it ran
            wait_for(lambda: any(text == "hello from fresh" for _, text in answers), "the new configuration answers")
            seen, body = poll(gw, rid)  # all read by the new configuration's gateway
        finally:
            stop.set()
            loader.join(60)
        assert answer(gw) == (200, "hello from fresh")
        assert gw.proc.poll() is None, gw.log()
    assert body["status"] == "completed", body
    assert body["output"][0]["content"][0]["text"] == "hello from slow-8", body  # by the old configuration
    assert set(seen) == {"in_progress", "completed"}, seen  # never failed as lapsed, never cancelled
    assert stored(ledger_url, rid)["status"] == "completed"
    assert answers and {status for status, _ in answers} == {200}, answers  # no request dropped
    assert {text for _, text in answers} <= {"hello from slow-1", "hello from fresh"}, answers


def test_a_reload_fails_a_response_that_outlasts_the_grace_as_shutdown_and_keeps_its_lease_meanwhile(
    ledger_url: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    """A plain request on the old configuration outlasts the grace too: the background response's grace is
    the one the requests get, counted from the reload, not a second one after theirs."""
    grace = 8  # more than two leases of 3 s
    cfg = config(fake_upstream, ledger_url, shutdown_grace_s=grace)
    with ThreadPoolExecutor(1) as pool, run_gateway(tmp_path, cfg) as gw:
        rid = start(gw, fake_upstream, "coding")  # 60 s of work: longer than the grace
        before = upstream_calls(fake_upstream, "slow-60")
        pool.submit(plain, gw, "coding")  # 60 s too, ended by the SIGKILL below
        wait_for(lambda: upstream_calls(fake_upstream, "slow-60") > before, "a plain request in flight too")
        reload(gw, tmp_path, cfg)
        reloaded = time.monotonic()
        assert answer(gw) == (200, "hello from fresh")
        seen, body = poll(gw, rid)  # all read by the new configuration's gateway, whose lease owner differs
        ran = time.monotonic() - reloaded
        assert answer(gw) == (200, "hello from fresh")  # the process goes on serving
        assert gw.proc.poll() is None, gw.log()
        log = gw.log()
        gw.proc.kill()  # not SIGTERM: it would wait out the plain request's grace
        gw.proc.wait(30)
    assert body["status"] == "failed" and body["error"]["code"] == "shutdown", body
    assert f"its grace of {grace} s ran out" in body["error"]["message"], body
    assert set(seen) == {"in_progress", "failed"}, seen  # in progress all along, then the grace's end
    assert ran > 2 * LEASE_S, ran  # read, in progress, over more than two leases
    assert ran < 1.5 * grace, ran  # the grace once (8 s), not a second one after the request's (16 s)
    row = stored(ledger_url, rid)
    assert row["status"] == "failed" and row["error"]["code"] == "shutdown", row
    assert "1 background response(s) still running at the end of the shutdown grace" in log, log
