"""Real processes for tests: the gateway (`owstack serve`) and the fake OpenAI-compatible upstream.

Import from any test area as `from procs import run_gateway, run_upstream, upstream_backend`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports: every socket stays bound until all are picked."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{log.read_text(errors='replace')}")


def spawn(
    args: list[str], log_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    return subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or ROOT, start_new_session=True
    )


@contextlib.contextmanager
def run_upstream(tmp: Path) -> Iterator[Proc]:
    port = free_port()
    log_path = tmp / f"upstream-{port}.log"
    proc = spawn([sys.executable, str(ROOT / "tests" / "fakes" / "upstream.py"), str(port)], log_path)
    p = Proc(proc, port, log_path)
    try:
        wait_http(p.url + "/health", proc, log_path, timeout=30)
        yield p
    finally:
        p.stop()


@contextlib.contextmanager
def run_gateway(
    tmp: Path,
    config: dict[str, Any] | None = None,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ready: bool = True,
    cwd: Path | None = None,
    port: int | None = None,
) -> Iterator[Proc]:
    port = port or free_port()
    log_path = tmp / f"gateway-{port}.log"
    cmd = [sys.executable, "-m", "owstack", "serve", "--port", str(port), *args]
    if config is not None:
        config_path = tmp / f"owstack-{port}.yaml"
        config_path.write_text(yaml.safe_dump(config))
        cmd += ["--config", str(config_path)]
    # With no config file the gateway keeps its ledger, keys and audit log in the data directory: the
    # test's own folder, as before relative paths resolved against the config file's folder.
    env = {"OWSTACK_DATA_DIR": str(cwd or tmp), **(env or {})}
    proc = spawn(cmd, log_path, env=env, cwd=cwd or tmp)
    p = Proc(proc, port, log_path)
    try:
        wait_http(p.url + ("/readyz" if ready else "/healthz"), proc, log_path, timeout=90)
        yield p
    finally:
        p.stop()


@contextlib.contextmanager
def run_gateways(tmp: Path, config: dict[str, Any] | None, n: int, **kwargs: Any) -> Iterator[list[Proc]]:
    """`n` gateways on one config, started side by side and stopped side by side: one start or stop takes
    1-3 s, and in a row they added up."""
    managers = [run_gateway(tmp, config, port=port, **kwargs) for port in free_ports(n)]
    with ThreadPoolExecutor(n) as pool:
        starts = [pool.submit(m.__enter__) for m in managers]
    started = [(m, f.result()) for m, f in zip(managers, starts, strict=True) if f.exception() is None]
    try:
        failed = next((f.exception() for f in starts if f.exception() is not None), None)
        if failed is not None:
            raise failed  # the gateways that did start are stopped below
        yield [p for _, p in started]
    finally:
        with ThreadPoolExecutor(n) as pool:
            for stopped in [pool.submit(m.__exit__, None, None, None) for m, _ in started]:
                stopped.result()


def upstream_backend(upstream: Proc, model: str, **extra: Any) -> dict[str, Any]:
    """A `backends:` entry pointing at the fake upstream with behaviour `model`."""
    return {"engine": "vllm", "url": upstream.base_url, "model": model, "jurisdiction": "local", **extra}


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something true (returned); AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout:.0f} s: {what}")
        time.sleep(0.05)
