"""The egress forward proxy against real sockets: CONNECT refused to private and metadata addresses and
passed to a public-looking one (a resolver the test controls; the test network routes that public address
to a loopback server), plain HTTP forwarded, a decompression bomb cut, and the `owstack egress proxy` CLI."""

from __future__ import annotations

import asyncio
import gzip
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from owstack.mcp.proxy import EgressProxy
from owstack.security.egress import EgressPolicy, StaticResolver
from procs import free_port, spawn

STAND_IN = "93.184.216.34"  # public-looking: routed to a loopback server by the test's connector
BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024))


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A loopback origin: echoes raw bytes after a tunnel opens; answers HTTP requests by path."""
    data = await reader.read(65536)
    if data.startswith(b"GET /bomb"):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(BOMB) + BOMB)
    elif data.startswith(b"GET "):
        body = b"origin saw: " + data.split(b"\r\n")[0]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    else:
        writer.write(b"echo:" + data)
    await writer.drain()
    writer.close()


class Net:
    def __init__(self, origin_port: int) -> None:
        self.origin_port = origin_port
        self.connects: list[tuple[str, int]] = []

    async def connect(self, address: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.connects.append((address, port))
        if address != STAND_IN:
            raise OSError(f"test network refuses {address}")
        return await asyncio.open_connection("127.0.0.1", self.origin_port)


async def _exchange(port: int, request: bytes, then: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if then and head.startswith(b"HTTP/1.1 200"):
        writer.write(then)
        await writer.drain()
    rest = await reader.read()
    writer.close()
    return head + rest


def run(coro_fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        origin = await asyncio.start_server(_serve, "127.0.0.1", 0)
        net = Net(origin.sockets[0].getsockname()[1])
        resolver = StaticResolver({"public.test": [STAND_IN], "private.test": ["10.1.2.3"], "loop.test": ["127.0.0.1"]})
        proxy = EgressProxy(EgressPolicy(), port=0, max_bytes=1024 * 1024, resolver=resolver, connector=net.connect)
        await proxy.start()
        try:
            return await coro_fn(proxy, net)
        finally:
            await proxy.aclose()
            origin.close()

    return asyncio.run(main())


def test_connect_refused_to_private_and_metadata_passed_to_public() -> None:
    async def go(proxy: EgressProxy, net: Net) -> dict[str, bytes]:
        out = {}
        for name in (
            "private.test:443",
            "loop.test:443",
            "169.254.169.254:80",
            "127.0.0.1:22",
            "metadata.google.internal:80",
        ):
            out[name] = await _exchange(proxy.port, f"CONNECT {name} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        out["public"] = await _exchange(proxy.port, b"CONNECT public.test:443 HTTP/1.1\r\n\r\n", b"ping")
        return out

    out = run(go)
    for name, reply in out.items():
        if name != "public":
            assert reply.startswith(b"HTTP/1.1 403"), (name, reply)
    assert out["public"].startswith(b"HTTP/1.1 200") and out["public"].endswith(b"echo:ping")


def test_plain_http_forwarded_and_a_decompression_bomb_cut() -> None:
    async def go(proxy: EgressProxy, net: Net) -> tuple[bytes, bytes, bytes, list[tuple[str, int]]]:
        ok = await _exchange(
            proxy.port, b"GET http://public.test/page HTTP/1.1\r\nHost: public.test\r\nProxy-Authorization: x\r\n\r\n"
        )
        bomb = await _exchange(proxy.port, b"GET http://public.test/bomb HTTP/1.1\r\nHost: public.test\r\n\r\n")
        private = await _exchange(proxy.port, b"GET http://private.test/ HTTP/1.1\r\n\r\n")
        return ok, bomb, private, net.connects

    ok, bomb, private, connects = run(go)
    assert ok.startswith(b"HTTP/1.1 200") and ok.endswith(b"origin saw: GET /page HTTP/1.1")
    assert bomb.startswith(b"HTTP/1.1 502") and b"max_bytes" in bomb  # cut: 8 MiB inflated, 1 MiB allowed
    assert private.startswith(b"HTTP/1.1 403")
    assert all(address == STAND_IN for address, _ in connects)  # nothing else was ever dialled


@pytest.fixture
def proxy_cli(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = spawn([sys.executable, "-m", "owstack", "egress", "proxy", "--port", str(port)], tmp_path / "proxy.log")
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError((tmp_path / "proxy.log").read_text()) from None
                asyncio.run(asyncio.sleep(0.1))
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_owstack_egress_proxy_refuses_private_targets(proxy_cli: int) -> None:
    async def go() -> list[bytes]:
        return [
            await _exchange(proxy_cli, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n"),
            await _exchange(proxy_cli, b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n"),
            await _exchange(proxy_cli, b"GET http://10.0.0.1/ HTTP/1.1\r\n\r\n"),
            await _exchange(proxy_cli, b"NONSENSE\r\n\r\n"),
        ]

    replies = asyncio.run(go())
    assert [r[:12] for r in replies] == [b"HTTP/1.1 403"] * 3 + [b"HTTP/1.1 400"]
