"""A gateway with MCP upstreams for the tests in this folder: the test server of `upstream_server.py` over
stdio (`local`) and over Streamable HTTP (`remote`, which owstack speaks 2026-07-28 to, and the same server
again as `remote25`, spoken to with 2025 sessions), plus two upstreams whose URLs resolve (by the config's
static `mcp.resolve`, a resolver the test controls) to 127.0.0.1 and 169.254.169.254 and must be refused."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client.streamable_http import streamable_http_client

from mcp import Client
from procs import Proc, free_port, spawn, wait_http

HERE = Path(__file__).resolve().parent
SERVER = str(HERE / "upstream_server.py")


@dataclass
class Upstream:
    proc: subprocess.Popen[bytes]
    port: int
    state: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def calls(self) -> list[str]:
        path = self.state / "calls.log"
        return path.read_text().split() if path.exists() else []


@contextlib.contextmanager
def http_upstream(tmp: Path, name: str) -> Iterator[Upstream]:
    state = tmp / name
    state.mkdir()
    port = free_port()
    log = tmp / f"{name}.log"
    proc = spawn([sys.executable, SERVER, "http", str(port), str(state)], log)
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", proc, log, timeout=60, ok=(200, 400, 405, 406))
        yield Upstream(proc, port, state)
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class McpStack:
    gateway: Proc
    remote: Upstream
    evil: Upstream
    local_state: Path
    keys: dict[str, str]
    config: Path

    @property
    def url(self) -> str:
        return self.gateway.url + "/mcp"

    def run(self, tenant: str, fn: Callable[[Client], Awaitable[Any]], mode: str = "legacy") -> Any:
        return run_client(self.url, self.keys.get(tenant), fn, mode)


def run_client(url: str, key: str | None, fn: Callable[[Client], Awaitable[Any]], mode: str = "legacy") -> Any:
    async def go() -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
        ):
            return await fn(client)

    return anyio.run(go)


@contextlib.asynccontextmanager
async def client_for(
    stack: McpStack, tenant: str, mode: str, message_handler: Callable[[Any], Awaitable[None]] | None = None
) -> AsyncIterator[Client]:
    """An official client on `/mcp` with the tenant's key, inside a running event loop."""
    headers = {"Authorization": f"Bearer {stack.keys[tenant]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(stack.url, http_client=http), mode=mode, cache=None,
               message_handler=message_handler) as client,
    ):  # fmt: skip
        yield client


def owstack(*args: str) -> subprocess.CompletedProcess[str]:
    """`owstack <args>` in this process (Typer's CliRunner): the same command against the running gateway's
    database and files, without a ~2 s interpreter start per call (the tests poll some commands)."""
    from typer.testing import CliRunner

    from owstack.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["owstack", *args], result.exit_code, result.stdout, result.stderr)
