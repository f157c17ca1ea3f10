"""The gateway in process, with its real backends, against real upstream servers (tests/fakes/upstream.py).

    async with serve(tmp_path, config) as app:     config checked and assembled as `owstack serve` does
        client = app.openai(api_key)               the official SDK over the ASGI app (no socket, no process)
        r = await app.http.get("/readyz")          plain HTTP (httpx)

What only a real process shows (a client's socket closing, signals, ports, start-up) keeps `start_gateway`.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from owstack.api.gateway import Gateway
from owstack.assembly import assemble
from owstack.config.load import from_dict
from owstack.config.validate import validate

BASE = "http://127.0.0.1"


@dataclass
class App:
    gateway: Gateway
    #: plain HTTP to the app (httpx)
    http: httpx.AsyncClient
    #: the same app for the official SDKs, which are built on httpx2
    sdk_http: httpx2.AsyncClient

    def openai(self, api_key: str = "unused") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{BASE}/v1", api_key=api_key, http_client=self.sdk_http, max_retries=0, timeout=30
        )


@contextlib.asynccontextmanager
async def serve(tmp: Path, config: dict[str, Any], *, clock: Callable[[], float] | None = None) -> AsyncIterator[App]:
    """`config` as `owstack serve --config <tmp>/owstack.yaml` would run it: relative paths against `tmp`,
    validated (port 0: no port of its own to collide with), assembled, started, and closed at the end."""
    checked = validate(from_dict(config, source=str(tmp / "owstack.yaml"), base=tmp), port=0)
    gw = assemble(checked.config, host=checked.host, **({"clock": clock} if clock is not None else {}))
    await gw.startup()
    try:
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gw), base_url=BASE, timeout=30) as http,
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw), base_url=BASE, timeout=30) as sdk_http,
        ):
            yield App(gw, http, sdk_http)
    finally:
        await gw.shutdown()


class Clock:
    """A monotonic clock a test moves by hand (`advance`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")  # module-scoped: a module's tests may share one gateway
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _collect_leaked_clients() -> Iterator[None]:
    """An SDK client another test left open closes itself when collected, in the loop running at that moment:
    collect it here, between tests, where no loop runs, rather than in the middle of this test's loop."""
    gc.collect()
    yield
