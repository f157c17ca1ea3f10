"""Helpers for the metering tests: configs, hand-built request contexts, ledger reads, a TCP proxy."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from owstack import storage
from owstack.config.load import Config, from_dict
from owstack.metering.journal import catch_up
from owstack.metering.ledger import ledger
from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import ChatRequest, Usage

BACKENDS: dict[str, Any] = {
    "edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct"},
    "gpu": {
        "engine": "vllm",
        "url": "http://gpu.invalid:8000/v1",
        "model": "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8",
        "hardware": "8xH100",
    },
    "plain": {"engine": "vllm", "url": "http://plain.invalid:8000/v1", "model": "some-open-model"},
    "oai": {"engine": "openai", "url": "https://api.invalid/v1", "model": "gpt-5.4", "proprietary": True},
}


def make_config(url: str, **metering: Any) -> Config:
    """Four backends (embedded, 8xH100, no hardware profile, proprietary) and the default counterfactual;
    relative paths (the ledger's write-ahead log) in the test's own folder (tests/conftest.py sets
    OWSTACK_DATA_DIR to it), never in the directory pytest runs from."""
    raw: dict[str, Any] = {
        "storage": {"url": url},
        "backends": BACKENDS,
        "layers": {
            "coding": {"backends": ["gpu"], "fallback": ["edge-local"]},
            "multimodal": {"backends": ["plain"]},
            "edge": {"backends": ["edge-local", "oai"]},
        },
        "metering": metering,
    }
    folder = os.environ.get("OWSTACK_DATA_DIR")  # unset while modules are collected: no writer runs then
    return from_dict(raw, base=Path(folder) if folder else None)


def make_ctx(
    request_id: str,
    *,
    layer: str | None = "coding",
    backend: str | None = "gpu",
    status: int = 200,
    usage: Usage | None = None,
    output: list[str] | None = None,
    messages: list[dict[str, Any]] | None = None,
    latency: float | None = 2.0,
    ttft: float | None = 0.25,
    attempts: list[Attempt] | None = None,
    stream: bool = False,
) -> RequestContext:
    ctx = RequestContext(request_id=request_id)
    ctx.request = ChatRequest(model="auto", messages=messages or [{"role": "user", "content": "Hello"}], stream=stream)
    ctx.layer, ctx.backend, ctx.status = layer, backend, status
    if backend is not None:
        ctx.engine = BACKENDS[backend]["engine"]
        ctx.model = BACKENDS[backend]["model"]
        ctx.attempts = attempts if attempts is not None else [Attempt(backend, "ok", latency or 0.0)]
    ctx.usage = usage or Usage()
    ctx.output_text = output or []
    ctx.finished_at = None if latency is None else ctx.started + latency
    ctx.first_byte_at = None if ttft is None else ctx.started + ttft
    return ctx


def rows(url: str) -> list[dict[str, Any]]:
    """The ledger's rows, as a reader sees them (journaled batches moved in first)."""
    catch_up(url)
    with storage.engine(url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(ledger).order_by(ledger.c.request_id))]


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; its last value. The timeout is generous on
    purpose: it only bounds a failing run, and a busy machine may take seconds to start a process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def count(url: str) -> int:
    """How many rows the ledger holds, as a reader sees it (journaled batches moved in first)."""
    catch_up(url)
    with storage.engine(url).connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar() or 0)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target` until `down()`; `up()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    close = down

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def sample(body: bytes | str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels`, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = body.decode() if isinstance(body, bytes) else body
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None
