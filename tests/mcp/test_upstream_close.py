"""Closing an upstream that is backing off between failed connections ends at once: a dead MCP server must not
hold up the gateway's shutdown (the back-off was a plain sleep that `aclose` waited out, up to 10 s)."""

from __future__ import annotations

import asyncio
import time

from owstack.mcp.config import McpSection, UpstreamSection
from owstack.mcp.upstreams import Upstream
from owstack.security.egress import EgressPolicy


def test_aclose_ends_a_restart_back_off_at_once() -> None:
    async def scenario() -> tuple[int, str | None, float]:
        # loopback is refused by the default egress policy: every connection fails at once, then backs off 5 s
        section = UpstreamSection(url="http://127.0.0.1:9/mcp")
        upstream = Upstream("dead", section, McpSection(servers={"dead": section}, restart_s=5), egress=EgressPolicy())
        upstream._task = asyncio.create_task(upstream._supervise())
        while upstream.restarts == 0:  # the first attempt failed: the supervisor is in its back-off
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await upstream.aclose()
        return upstream.restarts, upstream.error, time.monotonic() - started

    restarts, error, took = asyncio.run(scenario())
    assert restarts == 1 and error is not None and "egress blocked" in error  # one failure, then the back-off
    assert took < 1.0, f"aclose waited {took:.1f} s for the back-off"


def test_start_returns_once_the_first_attempt_failed() -> None:
    """The gateway's start-up waits for an upstream's first attempt, not CONNECT_WAIT_S for one that failed it
    (refused by egress here; not listening alike): each used to hold up start-up for 10 s."""

    async def scenario() -> tuple[float, bool, str | None]:
        section = UpstreamSection(url="http://127.0.0.1:9/mcp")
        upstream = Upstream("dead", section, McpSection(servers={"dead": section}, restart_s=5), egress=EgressPolicy())
        started = time.monotonic()
        await upstream.start()
        took = time.monotonic() - started
        ready = upstream.ready.is_set()
        await upstream.aclose()
        return took, ready, upstream.error

    took, ready, error = asyncio.run(scenario())
    assert not ready and error is not None and "egress blocked" in error
    assert took < 2.0, f"start waited {took:.1f} s for an upstream that had already failed"
