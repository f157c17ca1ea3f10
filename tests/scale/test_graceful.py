"""Graceful operations of `owstack serve`: SIGTERM turns /readyz unready, keeps listening for
`server.drain_delay_s`, then lets requests in flight (streams included) finish before the process exits;
SIGHUP swaps in the configuration as the file now says (backends, layers, tenants, limits) without
dropping a request, and rejects an invalid file with one clear log line."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from procs import Proc, free_port, run_gateway, wait_for

from .conftest import Replicas

pytestmark = pytest.mark.slow


def stream(url: str, model: str, max_tokens: int, key: str | None = None) -> dict[str, Any]:
    """One streamed chat completion, read to its end: the text, whether [DONE] came, the backend."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True, "max_tokens": max_tokens}
    words, done = [], False
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
        backend = r.headers.get("x-owstack-backend")
        for line in r.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                for choice in json.loads(line[6:]).get("choices") or []:
                    words.append((choice.get("delta") or {}).get("content") or "")
    return {"status": r.status_code, "text": "".join(words), "done": done, "backend": backend}


def ledger_rows(url: str) -> list[Any]:
    from owstack.metering.journal import catch_up
    from owstack.storage import dispose, engine

    catch_up(url)
    try:
        with engine(url).connect() as conn:
            return list(conn.execute(sa.text("SELECT request_id, status, stream FROM ledger")))
    finally:
        dispose(url)


def test_sigterm_turns_readyz_unready_first_then_drains_the_streams_in_flight(
    tmp_path: Path, replicas: Callable[..., Replicas]
) -> None:
    r = replicas(1, "--decode-ms", "100")
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = {
        "backends": {"r0": r.backend(0)},
        "layers": {layer: {"backends": ["r0"]} for layer in ("coding", "multimodal", "edge")},
        "storage": {"url": db},
        "server": {"drain_delay_s": 3, "shutdown_grace_s": 30},
    }
    with run_gateway(tmp_path, config) as gw, ThreadPoolExecutor(4) as pool:
        streams = [pool.submit(stream, gw.url, "edge", 60) for _ in range(3)]  # 6 s each
        wait_for(lambda: r.stats(0)["in_flight"] == 3, "three streams under way")
        gw.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: httpx.get(gw.url + "/readyz", timeout=5).status_code == 503, "/readyz unready")
        assert httpx.get(gw.url + "/readyz", timeout=5).json() == {"status": "not ready", "draining": True}
        assert httpx.get(gw.url + "/healthz", timeout=5).status_code == 200, "alive while draining"
        wait_for(lambda: _refused(gw.url), "the listener closes after the delay")
        results = [f.result(timeout=60) for f in streams]
        assert gw.proc.wait(60) is not None
    for result in results:
        assert result["status"] == 200 and result["done"], result
        assert result["text"].split() == [f"w{i}" for i in range(60)]
    rows = ledger_rows(db)
    assert sum(1 for row in rows if row.stream and row.status == 200) == 3, "every drained stream is in the ledger"
    assert "SIGTERM: /readyz now answers 503" in gw.log()


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


# reload ---------------------------------------------------------------------------------------------------


def reload_config(r: Replicas, backend: int, db: str, rpm: int | None) -> dict[str, Any]:
    tenant: dict[str, Any] = {"jurisdictions": ["local"]}
    if rpm is not None:
        tenant["requests_per_minute"] = rpm
    name = f"r{backend}"
    return {
        "backends": {name: r.backend(backend)},
        "layers": {layer: {"backends": [name]} for layer in ("coding", "multimodal", "edge")},
        "storage": {"url": db},
        "tenants": {"acme": tenant},
        "audit": {"enabled": False},
    }


def write(path: Path, config: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config))
    tmp.replace(path)


def test_sighup_swaps_backends_layers_and_limits_without_dropping_a_request(
    tmp_path: Path, replicas: Callable[..., Replicas]
) -> None:
    from owstack.storage import dispose
    from owstack.tenancy.keys import KeyStore

    r = replicas(2, "--decode-ms", "50")
    db = f"sqlite:///{tmp_path / 'owstack.db'}"
    key, _ = KeyStore(db).create("acme")
    dispose(db)
    path = tmp_path / "owstack.yaml"
    write(path, reload_config(r, 0, db, rpm=None))
    port = free_port()
    stop = threading.Event()
    statuses: list[int] = []

    def load(url: str) -> None:  # a steady trickle of requests across every reload
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
                got = client.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
                statuses.append(got.status_code)

    with _serve(tmp_path, path, port) as gw, ThreadPoolExecutor(4) as pool:
        long: Future[dict[str, Any]] = pool.submit(stream, gw.url, "edge", 80, key)  # 4 s on r0
        wait_for(lambda: r.stats(0)["in_flight"] == 1, "the long stream started on r0")
        loaders = [pool.submit(load, gw.url) for _ in range(2)]
        write(path, reload_config(r, 1, db, rpm=None))
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: stream(gw.url, "edge", 2, key)["backend"] == "r1", "new requests go to r1")
        old = long.result(timeout=60)
        assert old["done"] and old["backend"] == "r0" and len(old["text"].split()) == 80, "finished on the old one"

        write(path, {**reload_config(r, 1, db, rpm=None), "layers": {"edge": {"backends": ["nowhere"]}}})
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload rejected" in gw.log(), "the invalid file is rejected")
        assert "layers.edge.backends: unknown backend 'nowhere'" in gw.log()
        assert stream(gw.url, "edge", 2, key)["backend"] == "r1", "still serving the previous configuration"
        stop.set()
        for f in loaders:
            f.result(timeout=60)
        assert statuses and set(statuses) == {200}, f"no request dropped across reloads: {sorted(set(statuses))}"

        write(path, reload_config(r, 1, db, rpm=2))  # limits reload too
        gw.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: gw.log().count("configuration reloaded") == 2, "the limit is in force")
        codes = [stream(gw.url, "edge", 2, key)["status"] for _ in range(3)]
        assert codes == [200, 200, 429]


class _serve:
    """`owstack serve --config PATH` on a given port (the config file stays where the test rewrites it)."""

    def __init__(self, tmp: Path, config: Path, port: int) -> None:
        from procs import spawn, wait_http

        log = tmp / f"gateway-{port}.log"
        cmd = [sys.executable, "-m", "owstack", "serve", "--config", str(config), "--port", str(port)]
        self.proc = Proc(spawn(cmd, log, cwd=tmp), port, log)
        wait_http(self.proc.url + "/readyz", self.proc.proc, log, timeout=90)

    def __enter__(self) -> Proc:
        return self.proc

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()
