"""The HTTP server's own answers (api/server.py), in process: uvicorn with owstack's protocol in front of a
gateway with a fake backend, spoken to over a raw socket. What the application never sees (a request the
parser refuses, a head over the size limit, a body that stops arriving) is still answered in the API's
JSON shape, with `connection: close`, and the request that was waiting for its body ends as a 408."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from fakes.backend import Reply
from owstack.api.server import GuardedHttpToolsProtocol
from protocols.conftest import App, gateway
from reliability.fuzz import HEADS

pytestmark = pytest.mark.anyio
LIMITS = {"body_timeout_s": 0.3, "max_header_bytes": 8192, "send_timeout_s": 0.3}


@contextlib.asynccontextmanager
async def served(tmp: Path, reply: Reply | None = None) -> AsyncIterator[tuple[App, int]]:
    """The gateway behind uvicorn on a free port (in this event loop)."""
    async with gateway(tmp, [reply or Reply(text="hi")], server={"limits": LIMITS}) as app:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app.gateway,
            http=GuardedHttpToolsProtocol,
            lifespan="off",
            log_level="critical",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield app, sock.getsockname()[1]
        finally:
            server.should_exit = True
            await task


async def exchange(port: int, data: bytes, then: bytes = b"") -> tuple[int, dict[str, str], Any]:
    """Send `data` (and `then` after a pause), read until the server closes: status, headers, JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    if then:
        await asyncio.sleep(0.05)
        writer.write(then)
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, orjson.loads(body)


def openai_error(doc: Any) -> dict[str, Any]:
    assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), doc
    error: dict[str, Any] = doc["error"]
    assert isinstance(error["message"], str) and error["type"] == "invalid_request_error"
    return error


async def test_a_request_the_parser_refuses_gets_json_saying_why(tmp_path: Path) -> None:
    async with served(tmp_path) as (_, port):
        method = await exchange(port, b"GARBAGE\r\n\r\n")
        smuggled = await exchange(
            port,
            b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        )
        chunk = await exchange(
            port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
    status, headers, doc = method
    assert status == 400 and headers["connection"] == "close" and headers["content-type"] == "application/json"
    assert "Invalid method" in openai_error(doc)["message"]
    status, _, doc = smuggled  # an Anthropic path: Anthropic's shape
    assert status == 400 and doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert "Content-Length" in doc["error"]["message"]
    status, _, doc = chunk
    assert status == 400 and "chunk size" in openai_error(doc)["message"]


async def test_a_head_over_the_limit_is_414_or_431_and_closed(tmp_path: Path) -> None:
    async with served(tmp_path) as (app, port):
        url = await exchange(port, b"GET /v1/models?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        field = await exchange(
            port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
        )
        # an endless header (never completed): refused once it passes the limit, not buffered on
        endless = await exchange(port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ", then=b"a" * 20_000)
        fine = await exchange(
            port,
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Small: " + b"a" * 4000 + b"\r\n\r\n",
        )
    assert url[0] == 414 and openai_error(url[2])["code"] == "uri_too_long"
    assert field[0] == 431 and openai_error(field[2])["code"] == "header_too_large"
    assert endless[0] == 431 and endless[1]["connection"] == "close"
    assert fine[0] == 200
    assert not app.backend.requests


async def test_a_head_over_the_limit_on_mcp_is_a_json_rpc_error(tmp_path: Path) -> None:
    """`/mcp` answers every error as JSON-RPC; the server's own refusals said it in OpenAI's shape."""
    async with served(tmp_path) as (_, port):
        field = await exchange(
            port, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Method: " + b"a" * 9000 + b"\r\n\r\n"
        )
        url = await exchange(port, b"GET /mcp?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for (status, headers, doc), expected in ((field, 431), (url, 414)):
        assert status == expected and headers["connection"] == "close", (status, doc)
        assert doc["jsonrpc"] == "2.0" and doc["id"] is None and doc["error"]["code"] == -32600, doc
        assert doc["error"]["data"]["status"] == expected


async def test_a_body_that_stops_arriving_is_408_and_the_request_ends(tmp_path: Path) -> None:
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500\r\n\r\n"
    )
    async with served(tmp_path) as (app, port):
        status, headers, doc = await exchange(port, head + b'{"model":')
        # a client that takes its time between pieces, but keeps sending, is served
        body = b'{"model": "edge", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}'
        slow = head.replace(b"500", str(len(body)).encode()).replace(b"Host:", b"Connection: close\r\nHost:")
        ok = await exchange(port, slow + body[:20], then=body[20:])
        slot = app.gateway.slots["fake"]
    assert status == 408 and headers["connection"] == "close"
    assert doc["type"] == "error" and "body_timeout_s" in doc["error"]["message"]
    assert ok[0] == 200 and ok[2]["content"][0]["text"] == "hi"
    assert len(app.backend.requests) == 1 and slot.outstanding == 0


async def test_every_refused_head_of_the_fuzz_suite_is_a_json_4xx_and_the_server_serves_on(tmp_path: Path) -> None:
    async with served(tmp_path) as (app, port):
        answers = [await exchange(port, head) for head in HEADS]
        after = await exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    for head, (status, headers, doc) in zip(HEADS, answers, strict=True):
        assert 400 <= status < 500 and headers["connection"] == "close", head[:60]
        assert isinstance(doc.get("error"), dict), head[:60]
    assert after[0] == 200 and not app.backend.requests


async def test_a_client_that_reads_nothing_of_a_stream_is_dropped_and_frees_the_backend(tmp_path: Path) -> None:
    body = orjson.dumps({"model": "edge", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    async with served(tmp_path, Reply(text="abc" * 200_000)) as (app, port):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        await asyncio.get_running_loop().sock_sendall(sock, request)
        slot = app.gateway.slots["fake"]
        for _ in range(600):  # the stream fills the buffers, then the server gives up on the client
            await asyncio.sleep(0.05)
            if app.backend.requests and slot.outstanding == 0:
                break
        outstanding = slot.outstanding
        sock.close()
    assert app.backend.requests and outstanding == 0
