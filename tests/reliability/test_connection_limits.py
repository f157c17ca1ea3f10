"""Connection limits that protect the gateway (issue 14, item 2), against a real `owstack serve`: silent and
slow clients are closed at the header timeout, one client cannot hold more than its share, and a flood of
idle connections under a low file limit is refused before the descriptors run out: the audit log and the
ledger keep writing, and the gateway serves again as soon as the flood is gone, with no restart."""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from procs import Proc, free_port, spawn, wait_http

BODY = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}


def config(tmp: Path, upstream: Proc, **limits: Any) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "backends": {"up": {"engine": "vllm", "url": upstream.base_url, "model": "edge-model"}},
        "layers": {"edge": {"backends": ["up"]}},
        "server": {"limits": limits},
    }


@contextlib.contextmanager
def gateway(tmp: Path, cfg: dict[str, Any], nofile: int | None = None, probe_port: int | None = None) -> Iterator[Proc]:
    """`owstack serve` on a free port, optionally with a hard limit of `nofile` open files, and a probe port
    (`--probe-port`, where it is then awaited)."""
    port = free_port()
    path = tmp / f"owstack-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    argv = ["owstack", "serve", "--port", str(port), "--config", str(path)]
    if probe_port is not None:
        argv += ["--probe-port", str(probe_port)]
    code = (
        "import resource, runpy, sys\n"
        + (f"resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile}))\n" if nofile else "")
        + f"sys.argv = {argv!r}\n"
        + "runpy.run_module('owstack', run_name='__main__')\n"
    )
    log = tmp / f"gateway-{port}.log"
    proc = spawn([sys.executable, "-c", code], log, cwd=tmp)
    p = Proc(proc, port, log)
    try:
        ready = p.url if probe_port is None else f"http://127.0.0.1:{probe_port}"
        wait_http(ready + "/readyz", proc, log, timeout=90)
        yield p
    finally:
        p.stop()


def raw(gw: Proc) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=60)
    return s


def read_all(s: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection (bounded by the socket's timeout)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_silent_and_slow_clients_are_closed_at_the_header_timeout(fake_upstream: Proc, tmp_path: Path) -> None:
    with gateway(tmp_path, config(tmp_path, fake_upstream, header_timeout_s=1.0)) as gw:
        silent = raw(gw)
        slow = raw(gw)
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(OSError):  # a header line at a time, never finished
            for _ in range(40):
                slow.sendall(b"x-slow: 1\r\n")
                time.sleep(0.1)
        for s in (silent, slow):
            answer = read_all(s)  # returns once the gateway closed the connection
            assert answer.startswith(b"HTTP/1.1 408 ") and b"request_timeout" in answer
            s.close()
        assert httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60).status_code == 200


def test_one_client_cannot_hold_more_than_its_share(fake_upstream: Proc, tmp_path: Path) -> None:
    # idle and header timeouts far longer than the test: the held connections stay open however slow it runs
    cfg = config(tmp_path, fake_upstream, max_connections_per_client=4, header_timeout_s=600, idle_timeout_s=600)
    with gateway(tmp_path, cfg) as gw:
        held = [raw(gw) for _ in range(4)]
        for s in held:  # each is admitted: it answers a request
            s.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        extra = raw(gw)
        answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503 ") and b"too_many_connections" in answer
        held.pop().close()
        deadline = time.monotonic() + 60  # the gateway sees the close, then admits the next one
        while True:
            r = httpx.get(gw.url + "/healthz", timeout=60)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 200
        for s in held:
            s.close()


def test_a_flood_of_idle_connections_never_takes_the_writers_descriptors(fake_upstream: Proc, tmp_path: Path) -> None:
    """Under a hard limit of 256 open files, 600 idle connections: the gateway admits what the limit allows
    less the reserve, refuses the rest at once (a probe during the flood is refused too, quickly), closes the
    idle ones at the header timeout, and serves (audited, metered) right after; nothing logs 'Too many open
    files', and /readyz and /healthz say 200 once the flood is gone."""
    cfg = config(tmp_path, fake_upstream, header_timeout_s=2.0, max_connections_per_client=10_000)
    with gateway(tmp_path, cfg, nofile=256) as gw:
        assert httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60).status_code == 200
        flood: list[socket.socket] = []
        refused = 0
        for _ in range(600):
            s = socket.socket()
            s.settimeout(60)
            s.connect(("127.0.0.1", gw.port))
            flood.append(s)
        for s in flood:
            s.settimeout(0.0)
            with contextlib.suppress(BlockingIOError, ConnectionResetError):
                if s.recv(65536).startswith(b"HTTP/1.1 503 "):
                    refused += 1
        during = httpx.get(gw.url + "/healthz", timeout=60)  # a new connection now: refused at once, not hung
        assert during.status_code == 503 and during.json()["error"]["code"] == "too_many_connections"
        for s in flood:
            s.close()
        served, deadline = 0, time.monotonic() + 120
        while served < 20 and time.monotonic() < deadline:  # once the flood is gone (or timed out)
            r = httpx.post(gw.base_url + "/chat/completions", json=BODY, timeout=60)
            served += r.status_code == 200
        assert served == 20
        assert httpx.get(gw.url + "/readyz", timeout=60).status_code == 200
        assert httpx.get(gw.url + "/healthz", timeout=60).status_code == 200
        log = gw.log()
    assert "Too many open files" not in log and "audit log cannot be written" not in log
    assert "refusing new connections" in log
    assert refused > 0


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_during_normal_operation(path: str, fake_upstream: Proc, tmp_path: Path) -> None:
    with gateway(tmp_path, config(tmp_path, fake_upstream)) as gw:
        assert httpx.get(gw.url + path, timeout=60).status_code == 200
