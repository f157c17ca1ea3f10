"""Breakers, health checks, load balancing and cancellation, through the gateway: in process (its real
backends against real upstream servers, tests/api/conftest.py), but for a client going away, which needs a
real socket to close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.conftest import App, Clock, serve
from procs import Proc, run_upstream, upstream_backend


def requests_to(upstream: Proc, model: str) -> int:
    return int(httpx.get(upstream.url + "/stats").json()["requests"].get(model, 0))


async def available(app: App) -> list[str]:
    return list((await app.http.get("/readyz")).json()["layers"]["edge"]["available"])


def until(predicate: Any, timeout: float = 60.0) -> bool:
    """Poll until `predicate` holds (the timeout only bounds a failing run)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def until_async(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> bool:
    """`until` for a gateway in process: its health checks run while this waits."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def hi(client: openai.AsyncOpenAI, model: str) -> Any:
    return await client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )


@pytest.mark.anyio
async def test_breaker_opens_then_probes_then_503(tmp_path: Path, fake_upstream: Proc) -> None:
    config = {
        "backends": {
            "broken": upstream_backend(fake_upstream, "fail-before-first-byte", health_check=False),
            "good": upstream_backend(fake_upstream, "good"),
        },
        "layers": {"coding": {"backends": ["broken"], "fallback": ["good"]}, "edge": {"backends": ["broken"]}},
        "routing": {"breaker": {"failure_threshold": 2, "reset_s": 6.0}},
    }
    clock = Clock()  # the breakers' clock: the reset period passes when the test says so
    async with serve(tmp_path, config, clock=clock) as gw:
        client = gw.openai("x")
        before = requests_to(fake_upstream, "fail-before-first-byte")
        for _ in range(2):  # two failures open the breaker; the fallback serves both
            assert (await hi(client, "coding")).headers["x-owstack-backend"] == "good"
        assert requests_to(fake_upstream, "fail-before-first-byte") == before + 2
        for _ in range(3):  # open: the broken backend is not even tried
            assert (await hi(client, "coding")).headers["x-owstack-backend"] == "good"
        assert requests_to(fake_upstream, "fail-before-first-byte") == before + 2
        with pytest.raises(openai.APIStatusError) as info:  # no fallback on edge: 503, nothing sent
            await hi(client, "edge")
        assert info.value.status_code == 503
        assert "circuit open" in info.value.message
        ready = await gw.http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["layers"]["edge"]["ready"] is False
        clock.advance(6.1)  # half-open: exactly one probe goes through, fails, and re-opens the breaker
        with pytest.raises(openai.APIStatusError) as info:
            await hi(client, "edge")
        assert info.value.status_code == 502
        assert requests_to(fake_upstream, "fail-before-first-byte") == before + 3
        metrics = (await gw.http.get("/metrics")).text
        assert 'owstack_breaker_transitions_total{backend="broken",state="open"} 2.0' in metrics


@pytest.mark.anyio
async def test_health_checks_take_a_replica_out_and_back(tmp_path: Path, fake_upstream: Proc) -> None:
    with run_upstream(tmp_path) as sick:
        config = {
            "backends": {"sick": upstream_backend(sick, "sick"), "well": upstream_backend(fake_upstream, "well")},
            "layers": {"edge": {"backends": ["sick", "well"]}},
            "routing": {"health": {"interval_s": 0.2, "timeout_s": 1, "unhealthy_after": 1}},
        }
        async with serve(tmp_path, config) as gw:
            client = gw.openai("x")
            httpx.post(sick.url + "/admin/health", json={"ok": False})
            # the health checks (every 0.2 s) take it out
            assert await until_async(lambda: _available_is(gw, ["well"]))
            served = {(await hi(client, "edge")).headers["x-owstack-backend"] for _ in range(6)}
            assert served == {"well"}
            ready = (await gw.http.get("/readyz")).json()
            assert ready["layers"]["edge"]["available"] == ["well"]
            httpx.post(sick.url + "/admin/health", json={"ok": True})
            assert await until_async(lambda: _available_is(gw, ["sick", "well"]))


async def _available_is(app: App, names: list[str]) -> bool:
    return await available(app) == names


@pytest.mark.anyio
async def test_replicas_are_balanced_by_outstanding_requests(tmp_path: Path, fake_upstream: Proc) -> None:
    config = {
        "backends": {
            # slow enough that all 8 are in flight at once, however busy the machine
            "r1": upstream_backend(fake_upstream, "slow-3"),
            "r2": upstream_backend(fake_upstream, "slow-3"),
        },
        "layers": {"edge": {"backends": ["r1", "r2"]}},
    }
    async with serve(tmp_path, config) as gw:
        client = gw.openai("x")
        calls = [
            client.chat.completions.with_raw_response.create(model="edge", messages=[{"role": "user", "content": "x"}])
            for _ in range(8)
        ]
        backends = [r.headers["x-owstack-backend"] for r in await asyncio.gather(*calls)]
        assert sorted(backends) == ["r1"] * 4 + ["r2"] * 4


def test_a_client_that_goes_away_cancels_the_upstream_request(start_gateway: Any, tmp_path: Path) -> None:
    with run_upstream(tmp_path) as upstream:
        config = {"backends": {"streamer": upstream_backend(upstream, "slow-stream")}}
        with start_gateway(config) as gw:
            with httpx.stream(
                "POST",
                gw.base_url + "/chat/completions",
                json={"model": "edge", "messages": [{"role": "user", "content": "x"}], "stream": True},
                timeout=10,
            ) as r:
                lines = r.iter_lines()
                got = [next(lines) for _ in range(4)]
                assert any("t0" in line for line in got)
            assert until(lambda: httpx.get(upstream.url + "/stats").json()["abandoned"] >= 1)
            assert httpx.get(upstream.url + "/stats").json()["abandoned"] == 1
