"""Egress red team, second pass (2026-12-03): what the bytes of a response can do once a fetch is allowed
(gzip members, stacked codings, framing floods), redirect and DNS tricks against the real transport, the
host's own addresses off Linux, a name server that never answers the synchronous check, and host lists
given in code. Fetches go to real servers on loopback (`RawServer` answers with the exact bytes a test
gives it); the numbered tests failed on the code before this pass, the last ones held and stay as checks."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from test_egress_transport import STAND_IN, LoopbackOnlyBackend

from owstack.security.egress import (
    EgressBlocked,
    EgressLimitExceeded,
    EgressPolicy,
    StaticResolver,
    safe_client,
    safe_sync_client,
)

LOOPBACK = EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
Reply = bytes | Callable[[socket.socket], None]


class RawServer:
    """A loopback HTTP/1.1 server that answers each path with the exact bytes (or writer) it is given."""

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies, self.accepted = replies, 0
        self.paths: list[str] = []
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner.accepted += 1
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = self.request.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    path = head.split(b" ")[1].decode()
                    owner.paths.append(path)
                    reply = owner.replies[path]
                    try:
                        if callable(reply):
                            reply(self.request)
                            return
                        self.request.sendall(reply)
                    except OSError:
                        return

        self.httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def raw() -> Iterator[Callable[[dict[str, Reply]], RawServer]]:
    started: list[RawServer] = []

    def factory(replies: dict[str, Reply]) -> RawServer:
        started.append(RawServer(replies))
        return started[-1]

    yield factory
    for server in started:
        server.close()


def response(body: bytes, *headers: str, chunks: Iterable[bytes] | None = None) -> bytes:
    """An HTTP/1.1 200 with `headers`; Content-Length framing, or chunked when `chunks` is given."""
    if chunks is not None:
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        return _head([*headers, "Transfer-Encoding: chunked"]) + framed
    return _head([*headers, f"Content-Length: {len(body)}"]) + body


def _head(headers: list[str]) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + "".join(f"{h}\r\n" for h in headers).encode() + b"\r\n"


def fetch(url: str, policy: EgressPolicy) -> tuple[bytes | Exception, bytes | Exception]:
    """`url` through the async and the sync client: each the body or the exception raised."""

    async def one() -> bytes | Exception:
        async with safe_client(policy) as client:
            try:
                return (await client.get(url)).content
            except httpx.HTTPError as exc:
                return exc

    def other() -> bytes | Exception:
        with safe_sync_client(policy) as client:
            try:
                return client.get(url).content
            except httpx.HTTPError as exc:
                return exc

    return asyncio.run(one()), other()


def both_refused(url: str, policy: EgressPolicy, match: str) -> None:
    for outcome in fetch(url, policy):
        assert isinstance(outcome, EgressLimitExceeded), outcome
        assert match in str(outcome), outcome


# -- 1. gzip members after the first were dropped: a body of several members (RFC 1952 2.2) came back cut
#       after the first, and what followed it was never looked at


def test_every_gzip_member_is_decoded(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    members = gzip.compress(b"first ") + gzip.compress(b"") + gzip.compress(b"second") + gzip.compress(b"!")
    server = raw(
        {
            "/members": response(members, "Content-Encoding: gzip"),
            "/padded": response(members + b"\0" * 64, "Content-Encoding: gzip"),  # trailing padding ignored
            "/split": response(b"", "Content-Encoding: gzip", chunks=[members[i : i + 1] for i in range(len(members))]),
            "/one": response(gzip.compress(b"plain"), "Content-Encoding: gzip"),
        }
    )
    for path in ("/members", "/padded", "/split"):
        assert fetch(server.url(path), LOOPBACK) == (b"first second!", b"first second!"), path
    assert fetch(server.url("/one"), LOOPBACK) == (b"plain", b"plain")


def test_a_bomb_in_a_later_gzip_member_is_bounded(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    bomb = gzip.compress(b"ok") + gzip.compress(b"\0" * (32 << 20), 9)  # 2 bytes, then 32 MiB in ~32 KiB
    server = raw({"/bomb": response(bomb, "Content-Encoding: gzip")})
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=1 << 20)
    both_refused(server.url("/bomb"), policy, "max_bytes")


# -- 2. any number of stacked codings: each keeps its own 32 KiB window, so 3000 nested gzip layers
#       (93 KiB on the wire, a 18 KiB header) held 65 MiB while "hello" was decoded (curl CVE-2022-32206,
#       urllib3 CVE-2025-66418: both now refuse more than five)


def _nested(body: bytes, layers: int) -> bytes:
    for _ in range(layers):
        body = gzip.compress(body, 1)
    return body


def test_more_than_five_stacked_codings_are_refused(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    five, six, deep = _nested(b"hello", 5), _nested(b"hello", 6), _nested(b"hello", 300)
    three = "Content-Encoding: gzip, gzip, gzip"
    server = raw(
        {
            "/five": response(five, "Content-Encoding: " + ", ".join(["gzip"] * 5)),
            "/six": response(six, "Content-Encoding: " + ", ".join(["gzip"] * 6)),
            "/split": response(six, three, three),  # two headers, six codings
            "/deep": response(deep, "Content-Encoding: " + ",".join(["gzip"] * 300)),
            "/identity": response(five, "Content-Encoding: gzip, identity, gzip, gzip, identity, gzip, gzip"),
        }
    )
    assert fetch(server.url("/five"), LOOPBACK) == (b"hello", b"hello")
    assert fetch(server.url("/identity"), LOOPBACK) == (b"hello", b"hello")  # identity is no layer
    for path in ("/six", "/split", "/deep"):
        both_refused(server.url(path), LOOPBACK, "stacked")


def test_raw_deflate_is_told_apart_from_zlib_deflate_when_its_first_chunk_is_one_byte(
    raw: Callable[[dict[str, Reply]], RawServer],
) -> None:
    """`Content-Encoding: deflate` without the zlib wrapper (old IIS) was recognised only when the first zlib
    call failed: a first chunk of one byte passed, the second failed, and the body was called corrupt."""
    engine = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = engine.compress(b"raw deflate " * 50) + engine.flush()
    wrapped = zlib.compress(b"zlib deflate " * 50)
    server = raw(
        {
            "/raw": response(b"", "Content-Encoding: deflate", chunks=[body[:1], body[1:]]),
            "/zlib": response(b"", "Content-Encoding: deflate", chunks=[wrapped[:1], wrapped[1:]]),
        }
    )
    assert fetch(server.url("/raw"), LOOPBACK) == (b"raw deflate " * 50,) * 2
    assert fetch(server.url("/zlib"), LOOPBACK) == (b"zlib deflate " * 50,) * 2


# -- 3. framing is free to the sender: max_bytes counted the payload only, so chunk extensions (60 KB of
#       them per 1-byte chunk) or endless interim responses (102 Processing with 90 KB headers) kept a fetch
#       reading for all of timeout_s: 485 MB read for 8 KB of payload in 5 s


def _flood(blob: bytes, first: bytes = b"") -> Callable[[socket.socket], None]:
    def write(sock: socket.socket) -> None:
        sock.sendall(first)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sock.sendall(blob)

    return write


def test_framing_floods_are_cut_by_the_wire_budget(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    chunked = _head(["Transfer-Encoding: chunked"])
    server = raw(
        {
            "/extensions": _flood(b"1;" + b"a" * 60_000 + b"\r\nx\r\n", chunked),
            "/interim": _flood(b"HTTP/1.1 102 Processing\r\nX-Pad: " + b"p" * 90_000 + b"\r\n\r\n"),
            "/trailers": _flood(b"X-Trailer: " + b"t" * 60_000 + b"\r\n", chunked + b"1\r\nx\r\n0\r\n"),
        }
    )
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=100_000, timeout_s=15)
    start = time.monotonic()
    both_refused(server.url("/extensions"), policy, "framing")
    both_refused(server.url("/interim"), policy, "interim")
    for outcome in fetch(server.url("/trailers"), policy):  # h11 refuses a 100 KiB trailer block itself
        assert isinstance(outcome, httpx.RemoteProtocolError), outcome
    assert time.monotonic() - start < 10  # each used to run until timeout_s (15 s)


def test_a_malformed_body_is_an_httpx_error(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    """A protocol error while the body was read (a bad chunk size) escaped as httpcore's exception, which
    callers catching httpx's errors (the MCP client adapter among them) did not expect."""
    server = raw({"/bad": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nzz\r\n"})
    for outcome in fetch(server.url("/bad"), LOOPBACK):
        assert isinstance(outcome, httpx.RemoteProtocolError), outcome


def test_ordinary_framing_and_keep_alive_still_work(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    small = response(b"", "Content-Type: text/plain", chunks=[b"%d " % i for i in range(2000)])  # ~10 KB framing
    big = response(b"y" * 90_000)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 3 + response(b"after interim")
    server = raw({"/small": small, "/big": big, "/interim": interim})
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=100_000)
    expected = b"".join(b"%d " % i for i in range(2000))
    with safe_sync_client(policy) as client:  # one connection, its budgets renewed for every response
        for _ in range(3):
            assert client.get(server.url("/big")).content == b"y" * 90_000
            assert client.get(server.url("/small")).content == expected
            assert client.get(server.url("/interim")).content == b"after interim"
    assert server.accepted == 1

    async def go() -> None:
        async with safe_client(policy) as client:
            for _ in range(3):
                assert (await client.get(server.url("/big"))).content == b"y" * 90_000
                assert (await client.get(server.url("/small"))).content == expected

    asyncio.run(go())
    assert server.accepted == 2


# -- 4. the host's own addresses were read from /proc only: off Linux (or without /proc) none were known,
#       and a service bound to 0.0.0.0 was reachable on the host's public address


def test_own_addresses_are_known_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    from owstack.security.egress import addresses

    by_name = {ipaddress.ip_network(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None)}
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed: routes' source addresses, the name's
    monkeypatch.setattr(sys, "platform", "darwin")
    fallback = set(addresses._read_own_networks())
    assert fallback == by_name | addresses._route_networks()
    assert by_name <= fallback
    monkeypatch.undo()
    psutil = pytest.importorskip("psutil")  # imported for this platform, before it pretends to be another
    monkeypatch.setattr(sys, "platform", "darwin")
    found = set(addresses._read_own_networks())
    listed = {
        ipaddress.ip_network(a.address.split("%")[0])
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }
    assert listed and found == listed  # psutil's interface list when it is installed
    assert fallback <= listed | by_name  # every route's source address is an interface's


# -- 5. a false positive: a backslash anywhere refused the URL, though only one before the end of the
#       authority is read differently (a Windows path or a regex in a query string is data to every reader)


def test_a_backslash_after_the_authority_is_data(servers: dict[str, Any]) -> None:
    public = servers["public"]
    resolver = StaticResolver({"good.example": [STAND_IN]})
    network = LoopbackOnlyBackend(public)
    base = f"http://good.example:{public.port}"

    async def go() -> None:
        async with safe_client(EgressPolicy(), resolver, network_backend=network) as client:
            for url in (f"{base}/files?path=C:\\temp\\a.txt", f"{base}/a\\b", f"{base}/?q=\\d+#\\@127.0.0.1"):
                assert (await client.get(url)).text == "PUBLIC", url
            for url in (f"http://good.example\\@127.0.0.1:{public.port}/", f"http:\\\\127.0.0.1:{public.port}/"):
                with pytest.raises(EgressBlocked, match=r"backslash|userinfo"):  # httpx encodes it in userinfo
                    await client.get(url)

    asyncio.run(go())
    assert [path for path, _ in public.hits] == ["/files?path=C:\\temp\\a.txt", "/a\\b", "/?q=\\d+"]


# -- 7. host lists given in code: an international name (`bücher.example`) or a short IPv4 form (`127.1`,
#       `2130706433`) in deny_hosts never matched, since parsed hosts are IDNA-encoded and canonical


@pytest.mark.parametrize(
    ("url", "deny"),
    [
        ("http://bücher.example/", "bücher.example"),
        ("http://xn--bcher-kva.example/", "BÜCHER.example."),
        ("http://a.bücher.example/", "*.bücher.example"),
        ("http://127.0.0.1:8080/", "127.1"),
        ("http://0x7f.0.0.1/", "2130706433"),
    ],
)
def test_deny_hosts_in_unicode_or_short_ipv4_match(url: str, deny: str) -> None:
    from owstack.security.egress import check_url_sync

    resolver = StaticResolver({"xn--bcher-kva.example": [STAND_IN], "a.xn--bcher-kva.example": [STAND_IN]})
    policy = EgressPolicy(deny_hosts=(deny,), allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    decision = check_url_sync(url, policy, resolver)
    assert not decision.allowed and "deny_hosts" in decision.reason
    assert check_url_sync(url, EgressPolicy(allow_networks=policy.allow_networks), resolver).allowed
    listed = EgressPolicy(allow_hosts=(deny,), allow_networks=policy.allow_networks)
    assert check_url_sync(url, listed, resolver).allowed  # allow_hosts reads them the same way


# -- 8. an address in deny_hosts was matched against the URL's spelling only: the same IPv4 address in an
#       IPv6 form (IPv4-mapped, NAT64, 6to4), or a name that resolves to it, passed


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:93.184.216.34]/",
        "http://[::ffff:5db8:d822]/",
        "http://[64:ff9b::5db8:d822]/",
        "http://[2002:5db8:d822::1]/",
        "http://denied.example/",
        "http://mapped.example/",
        "http://v6.example/",
    ],
)
def test_an_address_in_deny_hosts_is_refused_in_every_form(url: str) -> None:
    from owstack.security.egress import check_url_sync

    resolver = StaticResolver(
        {
            "denied.example": ["93.184.216.35", "93.184.216.34"],
            "mapped.example": ["::ffff:93.184.216.34"],
            "v6.example": ["2606:2800:220:1::1"],
        }
    )
    policy = EgressPolicy(deny_hosts=("93.184.216.34", "[2606:2800:220:1:0:0:0:1]"))
    decision = check_url_sync(url, policy, resolver)
    assert not decision.allowed and "deny_hosts" in decision.reason, decision.reason
    assert check_url_sync(url, EgressPolicy(), resolver).allowed
    assert check_url_sync("http://93.184.216.35/", policy, resolver).allowed  # its neighbour is not denied


# -- checks of this pass that held on the old code (kept as regressions)


def test_redirects_in_every_spelling_never_reach_the_loopback_server(servers: dict[str, Any]) -> None:
    public, secret = servers["public"], servers["secret"]
    p = secret.port
    resolver = StaticResolver({"good.example": [STAND_IN], "rebind.example": ["127.0.0.1"]})
    locations = [
        f"http://[::ffff:127.0.0.1]:{p}/", f"http://[::127.0.0.1]:{p}/", f"http://[64:ff9b::7f00:1]:{p}/",
        f"http://[2002:7f00:1::]:{p}/", f"http://0x7f.1:{p}/", f"http://0177.1:{p}/", f"http://127.1:{p}/",
        f"http://0:{p}/", f"http://[::]:{p}/", f"http://0.0.0.0:{p}/", f"http://good.example@127.0.0.1:{p}/",
        f"http://127.0.0.1:{p}\\@good.example/", f"http:/\\127.0.0.1:{p}/", f"http:127.0.0.1:{p}/",
        f"///127.0.0.1:{p}/", f"\\\\127.0.0.1:{p}/", f"/\\127.0.0.1:{p}/", f"http://127.0.0.1%2f@good.example:{p}/",
        f"http://rebind.example:{p}/", f"HTTP://LOCALHOST:{p}/",
        f"http://127.0.0.1.:{p}/", f"https://127.0.0.1:{p}/", f"http://[fe80::1%25lo]:{p}/",
    ]  # fmt: skip
    network = LoopbackOnlyBackend(public)

    outcomes: dict[str, str] = {}

    async def go() -> None:
        async with safe_client(EgressPolicy(), resolver, network_backend=network) as client:
            for to in locations:
                try:
                    r = await client.get(f"http://good.example:{public.port}/redirect", params={"to": to})
                except (EgressBlocked, httpx.InvalidURL, httpx.RemoteProtocolError, httpx.UnsupportedProtocol) as exc:
                    outcomes[to] = type(exc).__name__
                else:
                    outcomes[to] = r.text  # a Location read as a path on the same (public) host

    asyncio.run(go())
    assert "SECRET" not in outcomes.values()
    asyncio.run(go())
    assert secret.hits == []
    assert {host for host, _ in network.connects} <= {STAND_IN}


def test_credentials_are_dropped_on_a_scheme_downgrade() -> None:
    from owstack.security.egress.clients import strip_credentials

    headers = httpx.Headers({"X-Api-Key": "k", "Authorization": "Bearer t", "Accept": "*/*"})
    kept = strip_credentials(httpx.Headers(headers), httpx.URL("https://a.example/"), httpx.URL("http://a.example/"))
    assert dict(kept) == {"accept": "*/*"}
    up = strip_credentials(httpx.Headers(headers), httpx.URL("http://a.example/"), httpx.URL("https://a.example/"))
    assert up["x-api-key"] == "k"


def test_dns_answers_mixing_public_and_private_are_refused_in_any_order(servers: dict[str, Any]) -> None:
    public, secret = servers["public"], servers["secret"]
    resolver = StaticResolver(
        {
            "a.example": [STAND_IN, "127.0.0.1"],
            "b.example": ["127.0.0.1", STAND_IN],
            "c.example": ["2606:4700::1111", "::ffff:127.0.0.1"],
            "d.example": [STAND_IN, "169.254.169.254"],
        }
    )
    network = LoopbackOnlyBackend(public)

    async def go() -> None:
        async with safe_client(EgressPolicy(), resolver, network_backend=network) as client:
            for name in ("a", "b", "c", "d"):
                with pytest.raises(EgressBlocked):
                    await client.get(f"http://{name}.example:{secret.port}/")

    asyncio.run(go())
    assert secret.hits == [] and network.connects == []


def test_a_bomb_in_a_redirect_body_is_bounded_too(raw: Callable[[dict[str, Reply]], RawServer]) -> None:
    """httpx reads a redirect's body before it follows the Location (urllib3 CVE-2026-21441: its bomb guard was
    skipped there): the body goes through the same decoder and caps."""
    bomb = gzip.compress(b"\0" * (32 << 20), 9)
    head = b"HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Encoding: gzip\r\n"
    server = raw({"/redirect": head + b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb, "/ok": response(b"ok")})
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=1 << 20)
    both_refused(server.url("/redirect"), policy, "max_bytes")
    assert "/ok" not in server.paths


class SyncLoopbackOnlyBackend(httpcore.NetworkBackend):
    """`LoopbackOnlyBackend` for the synchronous transport: STAND_IN reaches `public`, nothing else does."""

    def __init__(self, public: Any) -> None:
        self.inner, self.public = httpcore.SyncBackend(), public
        self.connects: list[tuple[str, int]] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.connects.append((host, port))
        if host != STAND_IN:
            raise httpcore.ConnectError(f"test network refuses {host}")
        return self.inner.connect_tcp("127.0.0.1", self.public.port, timeout)


def test_sync_transport_connects_to_the_checked_address_under_rebinding(servers: dict[str, Any]) -> None:
    """A name that answers a public address once and loopback afterwards (TTL 0), followed by a redirect to
    itself: the connection goes to the first answer, the second look-up's answer is refused."""
    public, secret = servers["public"], servers["secret"]
    answers = iter([[STAND_IN], ["127.0.0.1"], ["127.0.0.1"]])

    class Rebinding:
        async def resolve(self, host: str) -> list[str]:
            return next(answers)

        def resolve_sync(self, host: str) -> list[str]:
            return next(answers)

    network = SyncLoopbackOnlyBackend(public)
    url = f"http://rebind.example:{secret.port}/redirect?to=/again"
    client = safe_sync_client(EgressPolicy(), Rebinding(), network_backend=network)
    with client, pytest.raises(EgressBlocked, match="loopback"):
        client.get(url)
    assert network.connects == [(STAND_IN, secret.port)]
    assert [path for path, _ in public.hits] == ["/redirect?to=/again"] and secret.hits == []


# -- 6. the synchronous check waited for the name server as long as the system resolver did (timeouts and
#       retries: seconds to minutes for a server that never answers); timeout_s applied only afterwards


class HangingResolver:
    """An attacker's name server that answers after 3 s (after the check's timeout_s of 0.3 s)."""

    async def resolve(self, host: str) -> list[str]:
        await asyncio.sleep(3)
        return [STAND_IN]

    def resolve_sync(self, host: str) -> list[str]:
        time.sleep(3)
        return [STAND_IN]


def test_the_synchronous_look_up_is_bounded_by_timeout_s() -> None:
    from owstack.security.egress import check_url_sync

    policy = EgressPolicy(timeout_s=0.3)
    start = time.monotonic()
    decision = check_url_sync("http://slow.example/", policy, HangingResolver())
    assert not decision.allowed and "timed out" in decision.reason
    with safe_sync_client(policy, HangingResolver()) as client, pytest.raises(EgressBlocked, match="timed out"):
        client.get("http://slow.example/")
    assert time.monotonic() - start < 1.5  # the old check waited 3 s each time
