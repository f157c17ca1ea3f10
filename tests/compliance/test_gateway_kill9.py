"""kill -9 of a running gateway under load (16 connections): every request whose response finished has
its record on disk, and the chain verifies (the end reads as a crash)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson
import yaml

from owstack.compliance.verify import verify
from procs import Proc, free_port, run_upstream, spawn, upstream_backend, wait_http


def start_gateway(tmp: Path, upstream: Proc) -> Proc:
    config = {
        "backends": {"up": upstream_backend(upstream, "hello")},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys"), "node": "gw"},
    }
    path = tmp / "owstack.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "gateway.log"
    args = [sys.executable, "-m", "owstack", "serve", "--config", str(path), "--port", str(port)]
    proc = spawn(args, log, cwd=tmp)
    gw = Proc(proc, port, log)
    wait_http(gw.url + "/readyz", proc, log, timeout=90)
    return gw


def test_kill9_under_load_loses_no_finished_request(tmp_path: Path) -> None:
    with run_upstream(tmp_path) as upstream:
        gw = start_gateway(tmp_path, upstream)
        finished: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=gw.base_url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.post(
                            "/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
                        )
                    except httpx.HTTPError:
                        return  # the gateway is gone
                    if r.status_code == 200:
                        assert r.headers["x-owstack-ai-generated"] == "true"
                        with lock:
                            finished.append(r.headers["x-request-id"])

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        try:
            deadline = 60.0
            start = time.monotonic()
            while len(finished) < 300 and time.monotonic() - start < deadline:
                time.sleep(0.05)
            assert len(finished) >= 300, gw.log()
            os.killpg(gw.proc.pid, signal.SIGKILL)  # under load: requests are in flight right now
            gw.proc.wait(10)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            gw.stop()
        done = set(finished)

    logged = set()
    config_loaded = 0
    for seg in (tmp_path / "audit" / "streams").glob("*/seg-*.jsonl"):
        for line in seg.read_bytes().splitlines():
            record = orjson.loads(line)
            if record["type"] == "inference.request":
                logged.add(record["event_id"])
            config_loaded += record["type"] == "admin.config.loaded"
    missing = done - logged
    assert not missing, f"{len(missing)} finished requests have no audit record, e.g. {sorted(missing)[:3]}"
    report = verify(tmp_path / "audit")
    assert report.ok, [d.line() for d in report.damage]
    assert report.streams[0].state == "crashed"
    assert len(logged) >= len(done) >= 300
    assert config_loaded == 1  # the start-up hook recorded the configuration it serves
