"""Per-tenant egress policies on the proxy, the client named by its proxy credentials (an owstack key, or the
credentials owstack gives a stdio server), against real sockets and a real key store; then the proxy inside
`owstack serve`, used by a stdio MCP server through the HTTP_PROXY owstack gives it."""

from __future__ import annotations

import asyncio
import base64
import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_stack import SERVER, run_client
from test_proxy import STAND_IN, Net, _exchange, _serve

from owstack.mcp.config import ProxyPolicy
from owstack.mcp.proxy import EgressProxy
from owstack.mcp.proxy_auth import ProxyAuth
from owstack.security.egress import EgressPolicy, StaticResolver
from owstack.tenancy.keys import KeyStore
from procs import free_port, run_gateway


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def connect(target: str, authorization: str | None = None) -> bytes:
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_each_client_gets_its_own_policy(tmp_path: Path) -> None:
    store = KeyStore(f"sqlite:///{tmp_path / 'keys.db'}")
    acme, _ = store.create("acme")
    beta, _ = store.create("beta")
    gone, _ = store.create("gone")  # a tenant no longer in the config

    async def main() -> dict[str, bytes]:
        origin = await asyncio.start_server(_serve, "127.0.0.1", 0)
        net = Net(origin.sockets[0].getsockname()[1])
        names = {n: [STAND_IN] for n in ("public.test", "blocked.test", "only.test")}
        auth = ProxyAuth(
            EgressPolicy(), required=True, keystore=store, tenants=frozenset({"acme", "beta"}),
            tenant_policies={"acme": ProxyPolicy(deny_hosts=("blocked.test",)),
                             "beta": ProxyPolicy(allow_hosts=("only.test",))},
            server_policies={"files": ProxyPolicy(deny_hosts=("public.test",))},
        )  # fmt: skip
        proxy = EgressProxy(EgressPolicy(), port=0, resolver=StaticResolver(names), connector=net.connect, auth=auth)
        await proxy.start()
        files = proxy.url_for("files").split("//", 1)[1].split("@", 1)[0].split(":", 1)
        cases = {
            "anonymous": connect("public.test:443"),
            "wrong key": connect("public.test:443", "Bearer ows-000000000000-" + "x" * 43),
            "gone tenant": connect("public.test:443", f"Bearer {gone}"),
            "acme public": connect("public.test:443", basic("acme", acme)),
            "acme blocked": connect("blocked.test:443", basic("whoever", acme)),
            "acme as user": connect("public.test:443", basic(acme, "")),  # http://KEY@proxy gives this
            "beta public": connect("public.test:443", f"Bearer {beta}"),
            "beta only": connect("only.test:443", f"Bearer {beta}"),
            "beta metadata": connect("169.254.169.254:80", f"Bearer {beta}"),
            "files public": connect("public.test:443", basic(files[0], files[1])),
            "files only": connect("only.test:443", basic(files[0], files[1])),
            "files token, other user": connect("only.test:443", basic("owstack-mcp-other", files[1])),
        }
        try:
            return {name: await _exchange(proxy.port, request, b"ping") for name, request in cases.items()}
        finally:
            await proxy.aclose()
            origin.close()

    out = asyncio.run(main())
    status = {name: reply.split(b"\r\n", 1)[0].decode() for name, reply in out.items()}
    assert status["anonymous"].startswith("HTTP/1.1 407") and b"Proxy-Authenticate: Basic" in out["anonymous"]
    assert status["wrong key"].startswith("HTTP/1.1 407")
    assert status["gone tenant"].startswith("HTTP/1.1 407") and b"no longer configured" in out["gone tenant"]
    assert status["acme public"].startswith("HTTP/1.1 200") and out["acme public"].endswith(b"echo:ping")
    assert status["acme blocked"].startswith("HTTP/1.1 403") and b"deny_hosts" in out["acme blocked"]
    assert status["acme as user"].startswith("HTTP/1.1 200")
    assert status["beta public"].startswith("HTTP/1.1 403") and b"allow_hosts" in out["beta public"]
    assert status["beta only"].startswith("HTTP/1.1 200")
    assert status["beta metadata"].startswith("HTTP/1.1 403")
    assert status["files public"].startswith("HTTP/1.1 403")
    assert status["files only"].startswith("HTTP/1.1 200")
    assert status["files token, other user"].startswith("HTTP/1.1 407")


class _Origin(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        _Origin.seen.append((self.path, self.headers.get("Host", "")))
        body = b"origin says hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_stdio_server_goes_out_through_the_proxy_in_serve(tmp_path: Path, origin: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    proxy_port = free_port()
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'o.db'}"},
        "audit": {"enabled": False},
        "security": {"egress": {"allow_networks": ["127.0.0.1/32"]}},
        "mcp": {
            "servers": {"local": {"command": [sys.executable, SERVER, "stdio", str(state)]}},
            "resolve": {"origin.test": ["127.0.0.1"], "denied.test": ["127.0.0.1"], "meta.test": ["169.254.169.254"]},
            "proxy": {"enabled": True, "port": proxy_port, "auth": "required",
                      "servers": {"local": {"deny_hosts": ["denied.test"]}}},
        },
    }  # fmt: skip
    _Origin.seen.clear()
    with run_gateway(tmp_path, config) as gw:

        async def go(c: Any) -> dict[str, str]:
            out = {}
            for name, url in {"origin": f"http://origin.test:{origin}/hello", "meta": "http://meta.test/latest",
                              "denied": f"http://denied.test:{origin}/x"}.items():  # fmt: skip
                result = await c.call_tool("local.get", {"url": url})
                out[name] = result.content[0].text
            return out

        out = run_client(gw.url + "/mcp", None, go)
        anonymous = asyncio.run(_exchange(proxy_port, f"GET http://origin.test:{origin}/ HTTP/1.1\r\n\r\n".encode()))
        log = gw.log()
    assert out["origin"] == "200 origin says hello"
    assert _Origin.seen == [("/hello", f"origin.test:{origin}")]  # only the allowed request reached it
    assert out["meta"].startswith("403") and "169.254.169.254" in out["meta"]
    assert out["denied"].startswith("403") and "deny_hosts" in out["denied"]
    assert anonymous.startswith(b"HTTP/1.1 407")  # the proxy inside serve wants credentials
    assert "(server:local) http://origin.test" in log
