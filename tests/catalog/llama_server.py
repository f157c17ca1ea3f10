"""A real, separate OpenAI-compatible server for tests: the SmolLM2 recipe's llama-cpp-python server.

It runs exactly the command `owstack recipe smollm2-135m-instruct --engine llamacpp` prints as the
`llama-cpp-python` alternative (`python -m llama_cpp.server --model <wheel's GGUF> --host 127.0.0.1
--port N --model_alias smollm2-135m-instruct`), with `python` replaced by this interpreter, on a free
loopback port. It needs llama-cpp-python's `server` extra (fastapi, sse-starlette, starlette-context,
pydantic-settings, uvicorn) in the venv.

Use it from any test area:

    from catalog.llama_server import llama_server      # tests/ is on sys.path under pytest

    def test_something() -> None:
        with llama_server() as server:                  # starts, waits for /v1/models (about 1-2 s)
            httpx.post(f"{server.base_url}/chat/completions", json={"model": server.model, ...})

or the `smollm2_server` fixture in tests/catalog/conftest.py (module-scoped). Shutdown is clean: SIGTERM
to the server's own process group, a 10 s wait, then SIGKILL; the log is kept for failure messages.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class LlamaServer:
    base_url: str  # ends in /v1
    model: str  # the id /v1/models reports and requests should name
    port: int
    pid: int
    argv: tuple[str, ...]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_argv(port: int, *, n_ctx: int = 2048, n_threads: int = 2) -> list[str]:
    """The recipe's llama-cpp-python command for this port, run by the current interpreter."""
    from owstack.catalog.recipes import recipe

    r = recipe(MODEL, "llamacpp", port=port)
    argv = list(r.alternatives["llama-cpp-python"])
    if argv[0] != "python":
        raise AssertionError(f"recipe changed: expected a `python -m ...` command, got {argv}")
    argv[0] = sys.executable
    return [*argv, "--n_ctx", str(n_ctx), "--n_threads", str(n_threads)]


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"llama_cpp.server not ready after {timeout_s} s:\n{log_path.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        proc.wait(timeout=10)


@contextmanager
def llama_server(*, n_ctx: int = 2048, n_threads: int = 2, timeout_s: float = 60.0) -> Iterator[LlamaServer]:
    """Start the server, yield once /v1/models answers, stop it on exit (also on error)."""
    port = free_port()
    argv = server_argv(port, n_ctx=n_ctx, n_threads=n_threads)
    with tempfile.TemporaryDirectory(prefix="owstack-llama-server-") as tmp:
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_ready(proc, base_url, timeout_s, log_path)
            yield LlamaServer(base_url, MODEL, port, proc.pid, tuple(argv), log_path)
        finally:
            _stop(proc)
