"""The probe port (`server.probe_port`, `owstack serve --probe-port`), against a real `owstack serve`: while a
flood of idle connections holds every connection the public listener may take under a low file limit (a new
one is refused 503), the probe port still answers /healthz, /readyz and /metrics; after SIGTERM its /readyz
says 503 (draining); and the probe listener's own cap and timeout keep it from being flooded in turn."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from pathlib import Path

import httpx

from procs import Proc, free_port
from reliability.test_connection_limits import BODY, config, gateway, raw, read_all


def probe(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def test_probes_answer_while_the_public_listener_is_full(fake_upstream: Proc, tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, fake_upstream, header_timeout_s=600, idle_timeout_s=600, max_connections_per_client=10_000)
    cfg["server"]["drain_delay_s"] = 60  # after SIGTERM: /readyz says 503 for this long, the listener still open
    with gateway(tmp_path, cfg, nofile=256, probe_port=port) as gw:
        assert httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60).status_code == 200
        base = f"http://127.0.0.1:{port}"
        flood: list[socket.socket] = []
        try:
            for _ in range(400):  # more than the file limit allows: the last ones are refused at once
                s = socket.socket()
                s.settimeout(60)
                s.connect(("127.0.0.1", gw.port))
                flood.append(s)
            with contextlib.closing(raw(gw)) as s:  # a new public connection: refused (sending nothing, it
                public = read_all(s)  # reads the answer whole, not a reset racing a request it sent)
            assert public.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in public
            assert httpx.get(base + "/healthz", timeout=60).json() == {"status": "ok"}
            ready = httpx.get(base + "/readyz", timeout=60)
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            metrics = httpx.get(base + "/metrics", timeout=60)
            assert metrics.status_code == 200 and "owstack_requests_total" in metrics.text
            assert httpx.post(base + "/healthz", timeout=60).status_code == 405
            assert httpx.get(base + "/v1/models", timeout=60).status_code == 404
            gw.proc.send_signal(signal.SIGTERM)  # draining: /readyz on the probe port says so
            deadline = time.monotonic() + 60
            while (r := httpx.get(base + "/readyz", timeout=60)).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert r.status_code == 503 and r.json()["draining"] is True
            assert httpx.get(base + "/healthz", timeout=60).status_code == 200  # alive: no restart wanted
        finally:
            for s in flood:
                s.close()
        log = gw.log()
    assert "Too many open files" not in log and "refusing new connections" in log


def test_the_probe_listener_has_a_small_cap_and_a_short_timeout(fake_upstream: Proc, tmp_path: Path) -> None:
    from owstack.api.probes import PROBE_MAX_CONNECTIONS

    port = free_port()
    cfg = config(tmp_path, fake_upstream)
    cfg["server"]["probe_port"] = port
    with gateway(tmp_path, cfg) as gw:
        held = [probe(port) for _ in range(PROBE_MAX_CONNECTIONS)]
        with httpx.Client() as client:  # the cap is reached once the held ones are accepted
            deadline = time.monotonic() + 60
            while (r := client.get(f"http://127.0.0.1:{port}/healthz", timeout=60)).status_code == 200:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 503 and r.json()["error"]["code"] == "too_many_connections"
        for s in held:  # silent: closed after the probe listener's head timeout (2 s), with a 408
            answer = read_all(s)
            assert answer.startswith(b"HTTP/1.1 408 ")
            s.close()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
        # the public listener is not the probe port's: its own requests still work
        assert httpx.get(gw.url + "/healthz", timeout=60).status_code == 200
        with contextlib.closing(probe(port)) as s:  # one request per connection, then closed
            s.sendall(b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            answer = read_all(s)
        assert answer.startswith(b"HTTP/1.1 200 ") and b"connection: close" in answer


def test_with_several_workers_each_binds_the_probe_port(fake_upstream: Proc, tmp_path: Path) -> None:
    """`--workers 2`: both workers bind the probe port (SO_REUSEPORT); every probe is answered, and /metrics is
    the sum of both workers, whichever answers."""
    port = free_port()
    cfg = config(tmp_path, fake_upstream)
    cfg["server"]["workers"] = 2
    with gateway(tmp_path, cfg, probe_port=port) as gw:
        deadline = time.monotonic() + 60  # the second worker may start after the first is ready
        while gw.log().count("(/healthz, /readyz, /metrics)") < 2:
            assert time.monotonic() < deadline, gw.log()
            time.sleep(0.1)
        for _ in range(4):
            assert httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60).status_code == 200
        deadline = time.monotonic() + 60  # a worker's numbers reach the others within a flush interval
        while requests(port) != 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for _ in range(20):  # then every answer, from either worker, is the sum of both
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=60).status_code == 200
            assert requests(port) == 4


def requests(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    lines = [line for line in text.splitlines() if line.startswith("owstack_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)
