"""The whole gateway in process: `owstack.assembly.assemble` with fake backends, driven through
`httpx.ASGITransport` by the official SDKs. No subprocess, no model: each test scripts its backend's replies.

    async with gateway(tmp_path, [Reply(text="hi")]) as app: ...     app.client (httpx), app.backend
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest

from fakes.backend import FakeBackend, Reply
from owstack.api.gateway import Gateway
from owstack.assembly import assemble
from owstack.config.load import from_dict


@dataclass
class App:
    gateway: Gateway
    backend: FakeBackend
    #: plain HTTP to the app (httpx)
    client: httpx.AsyncClient
    #: the same app for the official SDKs, which are built on httpx2
    sdk_http: httpx2.AsyncClient


def config_dict(tmp: Path, **extra: Any) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "audit": {"enabled": False},
        "metering": {"enabled": False},
        "backends": {"fake": {"engine": "vllm", "url": "http://fake.invalid/v1", "model": "fake-model"}},
        **extra,
    }


@contextlib.asynccontextmanager
async def gateway(tmp: Path, replies: Sequence[Reply], **extra: Any) -> AsyncIterator[App]:
    config = from_dict(config_dict(tmp, **extra))
    backend = FakeBackend("fake", replies=list(replies))
    gw = assemble(config, backends={"fake": backend})
    await gw.startup()
    transport = httpx.ASGITransport(app=gw)
    headers = {"content-type": "application/json"}
    transport2 = httpx2.ASGITransport(app=gw)
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as client,
            httpx2.AsyncClient(transport=transport2, base_url="http://127.0.0.1") as sdk_http,
        ):
            yield App(gw, backend, client, sdk_http)
    finally:
        await gw.shutdown()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
