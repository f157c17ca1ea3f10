"""The PROXY protocol from trusted proxies (`server.trusted_proxies`, `server.proxy_protocol`), against a real
`owstack serve`: the per-client cap counts the clients the headers name (v1 and v2), not the proxy; the audit
log's actor is the real client; X-Forwarded-For is believed from trusted peers only; a header from a peer
that is not trusted, garbage, or plain HTTP where a header is due, closes the connection. And behind a real
proxy: Debian's nginx with its `stream` module (`proxy_protocol on`), which `make install` installs."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from procs import Proc, free_port, wait_for
from reliability.test_connection_limits import config, gateway, raw, read_all

HEALTHZ = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


def v1(client: str, port: int = 40000) -> bytes:
    family = "TCP6" if ":" in client else "TCP4"
    return f"PROXY {family} {client} 127.0.0.1 {port} 8000\r\n".encode()


def v2(client: str | None, port: int = 40000) -> bytes:
    """A v2 header: PROXY over TCP from `client`, or LOCAL (a proxy's own health check) for None."""
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    if client is None:
        return signature + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    address = ipaddress.ip_address(client)
    tlv = b"\x04" + struct.pack("!H", 3) + b"abc"  # a TLV the gateway skips (PP2_TYPE_NOOP)
    if address.version == 4:
        body = address.packed + ipaddress.ip_address("127.0.0.1").packed + struct.pack("!HH", port, 8000) + tlv
        return signature + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    body = address.packed + ipaddress.ip_address("::1").packed + struct.pack("!HH", port, 8000) + tlv
    return signature + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


def ask(gw: Proc, preface: bytes, request: bytes = HEALTHZ) -> tuple[socket.socket, bytes]:
    """A connection that sends `preface` then `request` (in one piece, as nginx and HAProxy do), and the
    first bytes of its answer (b"": closed without one)."""
    s = raw(gw)
    s.sendall(preface + request)
    with contextlib.suppress(ConnectionResetError):
        return s, s.recv(65536)
    return s, b""


def chat(client_header: bytes, extra: str = "") -> bytes:
    body = json.dumps({"model": "edge", "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{extra}content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return client_header + head.encode() + body


def actors(tmp: Path) -> list[str]:
    records = [
        json.loads(line)
        for seg in sorted((tmp / "audit" / "streams").glob("*/seg-*.jsonl"))
        for line in seg.read_text().splitlines()
        if line.strip()
    ]
    return [r["actor"]["pseudonym"] for r in records if r.get("type") == "inference.request"]


def pseudonym(tmp: Path, client: str) -> str:
    key = bytes.fromhex((tmp / "audit-keys" / "pseudonym.key").read_text().strip())
    return "hmac:" + hmac.new(key, f"actor:{client}".encode(), hashlib.sha256).hexdigest()[:32]


def proxied(tmp: Path, upstream: Proc, trusted: list[str], **limits: Any) -> dict[str, Any]:
    """The gateway behind a proxy: readiness is awaited on its probe port (plain HTTP from 127.0.0.1 is
    refused where 127.0.0.1 is a trusted proxy)."""
    cfg = config(tmp, upstream, header_timeout_s=600, idle_timeout_s=600, **limits)
    cfg["server"].update(trusted_proxies=trusted, proxy_protocol=True, probe_port=free_port())
    return cfg


def probe_of(cfg: dict[str, Any]) -> int:
    return int(cfg["server"]["probe_port"])


def test_the_per_client_cap_counts_the_clients_a_trusted_proxy_names(fake_upstream: Proc, tmp_path: Path) -> None:
    cfg = proxied(tmp_path, fake_upstream, ["127.0.0.0/8"], max_connections_per_client=2)
    with gateway(tmp_path, cfg, probe_port=probe_of(cfg)) as gw:
        held = []
        for header in (v1("203.0.113.7", 40001), v2("203.0.113.7", 40002)):  # client A, twice: both admitted
            s, answer = ask(gw, header)
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            held.append(s)
        s, answer = ask(gw, v1("203.0.113.7", 40003))  # A's third: A holds its share
        assert answer.startswith(b"HTTP/1.1 503 ") and b"client 203.0.113.7 holds 2" in read_all_after(s, answer)
        for header in (v2("203.0.113.8"), v1("2001:db8::8"), v2("2001:db8::9")):  # B (and others) still admitted,
            s, answer = ask(gw, header)  # through the same proxy address
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            held.append(s)
        s, answer = ask(gw, b"PROXY UNKNOWN\r\n")  # the proxy's own health check: counted as the peer (1 of 2)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        held.append(s)
        # the audit log's actor is the client the header names; X-Forwarded-For from it (not a trusted proxy)
        # is ignored, from the proxy itself (v2 LOCAL: the peer, trusted; its 2nd connection) it is believed
        for request in (
            chat(v1("198.51.100.9"), "x-forwarded-for: 192.0.2.66\r\n"),
            chat(v2("2001:db8::77")),
            chat(v2(None), "x-forwarded-for: 192.0.2.55\r\n"),
        ):
            s = raw(gw)
            s.sendall(request)
            assert read_all(s).startswith(b"HTTP/1.1 200 ")
            s.close()
        for s in held:
            s.close()
    seen = actors(tmp_path)
    for client in ("198.51.100.9", "2001:db8::77", "192.0.2.55"):
        assert pseudonym(tmp_path, client) in seen, client
    for client in ("192.0.2.66", "127.0.0.1"):
        assert pseudonym(tmp_path, client) not in seen, client


def read_all_after(s: socket.socket, first: bytes) -> bytes:
    rest = read_all(s)
    s.close()
    return first + rest


def test_what_is_not_a_header_from_a_trusted_proxy_closes_the_connection(fake_upstream: Proc, tmp_path: Path) -> None:
    cfg = proxied(tmp_path, fake_upstream, ["127.0.0.1"])
    with gateway(tmp_path, cfg, probe_port=probe_of(cfg)) as gw:
        for preface in (
            b"",  # plain HTTP: a header is required
            b"PROXY TCP4 203.0.113.7\r\n",  # too few fields
            b"PROXY TCP4 not-an-ip 127.0.0.1 1 2\r\n",
            b"PROXY TCP6 203.0.113.7 ::1 1 2\r\n",  # the family does not match
            b"PROXY TCP4 203.0.113.7 127.0.0.1 99999 2\r\n",
            b"PROXY " + b"x" * 200 + b"\r\n",  # longer than a v1 line may be
            b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x31, 0x11, 0, 0]),  # version 3
            b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11, 0, 4]) + b"\x01\x02\x03\x04",  # too short for IPv4
            b"\x00\xff garbage \x16\x03\x01",
        ):
            s, answer = ask(gw, preface)
            assert answer == b"" and read_all(s) == b"", preface
            s.close()
        s, answer = ask(gw, v1("203.0.113.7"))  # and it still serves
        assert answer.startswith(b"HTTP/1.1 200 ")
        s.close()
        log = gw.log()
    assert "did not begin with a PROXY protocol header" in log and "Traceback" not in log


def test_a_header_from_a_peer_that_is_not_trusted_is_refused(fake_upstream: Proc, tmp_path: Path) -> None:
    with gateway(tmp_path, proxied(tmp_path, fake_upstream, ["10.9.8.7"])) as gw:
        for header in (v1("203.0.113.7"), v2("203.0.113.7")):
            s, answer = ask(gw, header)
            assert answer == b"" and read_all(s) == b""
            s.close()
        # a direct client (plain HTTP), its X-Forwarded-For ignored: the actor is its own address
        r = httpx.post(
            gw.base_url + "/chat/completions",
            json={"model": "edge", "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-forwarded-for": "192.0.2.44"},
            timeout=60,
        )
        assert r.status_code == 200
        log = gw.log()
    assert "not a trusted proxy" in log
    seen = actors(tmp_path)
    assert pseudonym(tmp_path, "127.0.0.1") in seen and pseudonym(tmp_path, "192.0.2.44") not in seen


def test_without_trusted_proxies_x_forwarded_for_is_not_believed(fake_upstream: Proc, tmp_path: Path) -> None:
    """Before: uvicorn believed X-Forwarded-For from 127.0.0.1 by default; now from no one unless configured."""
    with gateway(tmp_path, config(tmp_path, fake_upstream)) as gw:
        body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-forwarded-for": "192.0.2.33"}
        assert httpx.post(gw.base_url + "/chat/completions", json=body, headers=headers, timeout=60).status_code == 200
    seen = actors(tmp_path)
    assert pseudonym(tmp_path, "127.0.0.1") in seen and pseudonym(tmp_path, "192.0.2.33") not in seen


STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def test_behind_nginx_stream_with_proxy_protocol_the_gateway_sees_the_real_client(
    fake_upstream: Proc, tmp_path: Path
) -> None:
    """nginx (TCP, `proxy_protocol on`) on 127.0.0.1 in front; clients connect to it from 127.0.0.2 and
    127.0.0.3: the per-client cap holds each to its own share and the audit log names each, never nginx."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists() or not STREAM_MODULE.exists():
        pytest.skip("nginx with its stream module is not installed (`make install`: nginx, libnginx-mod-stream)")
    cfg = proxied(tmp_path, fake_upstream, ["127.0.0.1"], max_connections_per_client=2)
    with gateway(tmp_path, cfg, probe_port=probe_of(cfg)) as gw:
        listen = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            f"load_module {STREAM_MODULE};\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log;\n"
            "events {}\n"
            f"stream {{ server {{ listen 127.0.0.1:{listen}; proxy_pass 127.0.0.1:{gw.port}; proxy_protocol on; }} }}\n"
        )
        proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)  # fmt: skip
        try:

            def through(client: str) -> socket.socket:
                s = socket.create_connection(("127.0.0.1", listen), timeout=60, source_address=(client, 0))
                return s

            def answered(client: str, request: bytes = HEALTHZ) -> tuple[socket.socket, bytes]:
                s = through(client)
                s.sendall(request)
                with contextlib.suppress(ConnectionResetError):
                    return s, s.recv(65536)
                return s, b""

            def up() -> bool:
                try:
                    s, answer = answered("127.0.0.2")
                except OSError:  # not listening yet
                    return False
                s.close()
                return answer.startswith(b"HTTP/1.1 200 ")

            wait_for(up, "nginx passes requests on")
            held = []
            for _ in range(2):  # 127.0.0.2's share
                s, answer = answered("127.0.0.2")
                assert answer.startswith(b"HTTP/1.1 200 "), answer
                held.append(s)
            s, answer = answered("127.0.0.2")  # a third from it: refused, naming it (not nginx's 127.0.0.1)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"client 127.0.0.2 holds 2" in read_all_after(s, answer)
            s, answer = answered("127.0.0.3")  # another client through the same nginx: admitted
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            held.append(s)
            for s in held:
                s.close()
            s = through("127.0.0.3")
            s.sendall(chat(b""))
            assert read_all(s).startswith(b"HTTP/1.1 200 ")
            s.close()
        finally:
            proc.terminate()
            proc.wait(10)
    seen = actors(tmp_path)
    assert pseudonym(tmp_path, "127.0.0.3") in seen and pseudonym(tmp_path, "127.0.0.1") not in seen
