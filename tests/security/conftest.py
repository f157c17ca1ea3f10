"""Shared fixtures for the security tests: real HTTP(S) servers on loopback."""

from __future__ import annotations

import gzip
import http.server
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Server:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""

    name: str
    port: int = 0
    hits: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    sni: list[str | None] = field(default_factory=list)
    accept_encoding: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's headers, names lower-cased
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


def _handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if "Transfer-Encoding" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            server.hits.append((self.path, self.headers.get("Host", "")))
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path == "/redirect":
                self._send(302, b"", {"Location": query["to"][0]})
            elif parts.path == "/loop":
                self._send(302, b"", {"Location": "/loop"})
            elif parts.path == "/big":
                self._send(200, b"x" * int(query["n"][0]))
            elif parts.path == "/chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for _ in range(int(query["n"][0]) // 1024):
                    self.wfile.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif parts.path == "/encoded":  # ?coding=gzip,gzip&n=BYTES of zeros, encoded layer by layer
                body = b"\0" * int(query["n"][0])
                coding = query["coding"][0]
                server.accept_encoding.append(self.headers.get("Accept-Encoding", ""))
                for layer in coding.split(","):
                    if layer in ("gzip", "x-gzip"):
                        body = gzip.compress(body, 9)
                    elif layer == "deflate":
                        body = zlib.compress(body, 9)
                self._send(200, body, {"Content-Encoding": coding.replace(",", ", ")})
            elif parts.path == "/slow-headers":  # status line and headers one byte per 0.1 s, then no body
                head = b"HTTP/1.1 204 No Content\r\nX-Pad: " + b"p" * int(query["n"][0]) + b"\r\n\r\n"
                self.close_connection = True
                try:
                    for i in range(len(head)):
                        self.wfile.write(head[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass
            elif parts.path == "/slow":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for _ in range(int(query.get("n", ["40"])[0])):
                        self.wfile.write(b"1\r\nz\r\n")
                        self.wfile.flush()
                        time.sleep(0.1)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
            else:
                self._send(200, server.name.encode(), {"Content-Type": "text/plain"})

    return Handler


def start_server(name: str, tls: ssl.SSLContext | None = None) -> tuple[Server, http.server.ThreadingHTTPServer]:
    server = Server(name)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: server.sni.append(name)  # type: ignore[assignment]
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        server.scheme = "https"
    server.port = httpd.server_address[1]
    # shutdown() waits for serve_forever's next poll: 0.5 s by default, paid twice by every test with two servers
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, httpd


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    """Start real servers on 127.0.0.1 (`factory(name, tls=ssl_context)`); all are stopped afterwards."""
    started: list[http.server.ThreadingHTTPServer] = []

    def factory(name: str, tls: ssl.SSLContext | None = None) -> Server:
        server, httpd = start_server(name, tls)
        started.append(httpd)
        return server

    yield factory
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def servers(server_factory: Callable[..., Server]) -> dict[str, Server]:
    """Two servers: `public` stands in for the internet, `secret` for an internal service."""
    return {"public": server_factory("PUBLIC"), "secret": server_factory("SECRET")}
