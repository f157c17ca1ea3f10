"""The lean upstream client against real servers: keep-alive reuse, chunked bodies, timeouts, drops."""

from __future__ import annotations

import asyncio
import json

import pytest

from owstack.backends import httpclient
from procs import Proc, free_port


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_keep_alive_connections_are_reused(fake_upstream: Proc) -> None:
    async def go() -> tuple[int, list[int]]:
        pool = httpclient.Pool(fake_upstream.base_url, max_connections=4)
        statuses = []
        for _ in range(5):
            resp = await pool.request("GET", "/health")
            await resp.read()
            statuses.append(resp.status)
        opened = pool._open
        await pool.aclose()
        return opened, statuses

    opened, statuses = run(go())
    assert statuses == [200] * 5
    assert opened == 1


def test_streamed_chunked_body_arrives_in_pieces(fake_upstream: Proc) -> None:
    body = json.dumps({"model": "good", "messages": [{"role": "user", "content": "x"}], "stream": True}).encode()

    async def go() -> list[bytes]:
        pool = httpclient.Pool(fake_upstream.base_url)
        resp = await pool.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
        pieces = [p async for p in resp.iter_bytes()]
        await resp.aclose()
        await pool.aclose()
        return pieces

    pieces = run(go())
    assert len(pieces) >= 3
    assert b"".join(pieces).endswith(b"data: [DONE]\n\n")


def test_connect_error_and_read_timeout(fake_upstream: Proc) -> None:
    async def refused() -> None:
        pool = httpclient.Pool(f"http://127.0.0.1:{free_port()}")
        await pool.request("GET", "/")

    with pytest.raises(httpclient.ConnectError):
        run(refused())

    async def slow() -> None:
        pool = httpclient.Pool(fake_upstream.base_url)
        body = json.dumps({"model": "slow-2", "messages": []}).encode()
        await pool.request("POST", "/v1/chat/completions", body, timeouts=httpclient.Timeouts(connect=1, read=0.3))

    with pytest.raises(httpclient.ReadTimeout):
        run(slow())


def test_connection_pool_limit_queues_requests(fake_upstream: Proc) -> None:
    async def go() -> int:
        pool = httpclient.Pool(fake_upstream.base_url, max_connections=2)

        async def one() -> int:
            body = json.dumps({"model": "slow-0.3", "messages": []}).encode()
            resp = await pool.request("POST", "/v1/chat/completions", body)
            await resp.read()
            return resp.status

        statuses = await asyncio.gather(*(one() for _ in range(6)))
        assert statuses == [200] * 6
        opened = pool._open
        await pool.aclose()
        return opened

    assert run(go()) <= 2


def test_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError):
        httpclient.Pool("ftp://example.com")
