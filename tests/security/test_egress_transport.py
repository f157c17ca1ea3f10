"""SafeTransport against real HTTP servers on loopback: blocking, pinning (DNS rebinding), redirects, caps."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from owstack.security.egress import (
    EgressBlocked,
    EgressLimitExceeded,
    EgressPolicy,
    SafeTransport,
    StaticResolver,
    check_url,
    safe_client,
    safe_sync_client,
)

Server = Any
LOOPBACK = EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
#: a public address that stands in for "the internet": the test backend routes it to a loopback server
STAND_IN = "93.184.216.34"


class RebindingResolver:
    """Answers a public address the first time, then 127.0.0.1: a DNS rebinding attack."""

    def __init__(self) -> None:
        self.calls = 0

    def _answer(self) -> list[str]:
        self.calls += 1
        return [STAND_IN] if self.calls == 1 else ["127.0.0.1"]

    async def resolve(self, host: str) -> list[str]:
        return self._answer()

    def resolve_sync(self, host: str) -> list[str]:
        return self._answer()


class LoopbackOnlyBackend(httpcore.AsyncNetworkBackend):
    """Test network: routes STAND_IN to the `public` server, lets loopback through, refuses the rest."""

    def __init__(self, public: Server) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.public = public
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host == STAND_IN:
            return await self.inner.connect_tcp("127.0.0.1", self.public.port, timeout)
        if host == "127.0.0.1":
            return await self.inner.connect_tcp(host, port, timeout)
        raise httpcore.ConnectError(f"test network refuses {host}")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def test_default_policy_blocks_loopback_server_and_it_is_never_contacted(servers: dict[str, Server]) -> None:
    secret = servers["secret"]

    async def go() -> None:
        async with safe_client() as client:
            for url in (
                secret.url + "/",
                f"http://2130706433:{secret.port}/",
                f"http://0x7f.1:{secret.port}/",
                f"http://127.1:{secret.port}/",
                f"http://[::ffff:127.0.0.1]:{secret.port}/",
                f"http://localhost:{secret.port}/",
            ):
                with pytest.raises(EgressBlocked) as info:
                    await client.get(url)
                assert not info.value.decision.allowed

    asyncio.run(go())
    assert secret.hits == []


def test_explicitly_allowed_loopback_is_fetched(servers: dict[str, Server]) -> None:
    async def go() -> str:
        async with safe_client(LOOPBACK) as client:
            r = await client.get(servers["public"].url + "/hello")
            return r.text

    assert asyncio.run(go()) == "PUBLIC"
    assert servers["public"].hits == [("/hello", f"127.0.0.1:{servers['public'].port}")]


def test_dns_rebinding_stays_pinned_to_the_checked_address(servers: dict[str, Server]) -> None:
    public, secret = servers["public"], servers["secret"]
    resolver = RebindingResolver()
    backend = LoopbackOnlyBackend(public)
    url = f"http://rebind.example:{secret.port}/data"

    async def go() -> str:
        transport = SafeTransport(EgressPolicy(), resolver, network_backend=backend)
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.get(url)
            # A fresh look-up now answers 127.0.0.1: the next request is blocked, not sent.
            with pytest.raises(EgressBlocked, match=r"127\.0\.0\.1"):
                await client.get(url.replace("/data", "/again"))
            return r.text

    assert asyncio.run(go()) == "PUBLIC"
    assert backend.connects == [(STAND_IN, secret.port)]  # connected to the checked address only
    assert secret.hits == []
    assert public.hits == [("/data", f"rebind.example:{secret.port}")]  # Host header kept the name
    assert resolver.calls == 2


def test_proxy_variables_cannot_route_around_the_check(
    servers: dict[str, Server], server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY/ALL_PROXY pointing at a proxy (here a recording server), NO_PROXY emptied: the request
    is still checked against its real destination and blocked, and the proxy never sees it, whether the
    client comes from `safe_client` or is an `httpx` client built on the transport with trust_env left on."""
    proxy, secret = server_factory("PROXY"), servers["secret"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.setenv("NO_PROXY", "")

    async def go() -> None:
        for client in (safe_client(), httpx.AsyncClient(transport=SafeTransport(), follow_redirects=True)):
            async with client:
                with pytest.raises(EgressBlocked, match="loopback"):
                    await client.get(secret.url + "/via-proxy")

    asyncio.run(go())
    assert proxy.hits == [] and secret.hits == []


def test_unpinned_connection_is_refused() -> None:
    """The pinning backend refuses any connection the transport did not check (fail closed)."""
    from owstack.security.egress import PinnedBackend

    async def go() -> None:
        with pytest.raises(httpcore.ConnectError, match="not checked"):
            await PinnedBackend().connect_tcp("127.0.0.1", 9)

    asyncio.run(go())


def test_redirect_hops_are_checked(servers: dict[str, Server]) -> None:
    public, secret = servers["public"], servers["secret"]
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_redirects=3)

    async def go() -> None:
        async with safe_client(policy) as client:
            r = await client.get(f"{public.url}/redirect?to={secret.url}/ok")
            assert r.text == "SECRET"  # an allowed hop is followed
            with pytest.raises(EgressBlocked, match="metadata"):
                await client.get(f"{public.url}/redirect?to=http://169.254.169.254/latest/meta-data/")
            with pytest.raises(EgressBlocked, match="userinfo"):
                await client.get(f"{public.url}/redirect?to=http://a@127.0.0.1:{secret.port}/")
            for scheme in ("file:///etc/passwd", "gopher://127.0.0.1:70/_x", "ftp://127.0.0.1/", "dict://x:11211/"):
                with pytest.raises(EgressBlocked, match="is not allowed"):
                    await client.get(f"{public.url}/redirect?to={scheme}")
            with pytest.raises(httpx.TooManyRedirects):
                await client.get(f"{public.url}/loop")

    asyncio.run(go())
    assert [p for p, _ in public.hits].count("/loop") == 4  # first request + max_redirects hops
    assert secret.hits == [("/ok", f"127.0.0.1:{secret.port}")]


CREDENTIALS = {
    "Authorization": "Bearer s1",
    "Proxy-Authorization": "Basic s2",
    "X-Api-Key": "s3",
    "Api-Key": "s4",
    "X-Auth-Token": "s5",
    "Private-Token": "s6",
}


def test_credential_headers_do_not_follow_a_redirect_to_another_origin(servers: dict[str, Server]) -> None:
    public, secret = servers["public"], servers["secret"]
    headers = {**CREDENTIALS, "X-Trace": "t1", "Accept": "text/plain"}

    async def go() -> None:
        async with safe_client(LOOPBACK) as client:
            await client.get(f"{public.url}/redirect?to=/same", headers=headers)  # same origin: all kept
            await client.get(f"{public.url}/redirect?to={secret.url}/other", headers=headers)  # another port

    asyncio.run(go())
    with safe_sync_client(LOOPBACK) as client:
        client.get(f"{public.url}/redirect?to={secret.url}/other-sync", headers=headers)
    same = public.headers[1]
    assert {k.lower(): v for k, v in CREDENTIALS.items()}.items() <= same.items()
    assert [p for p, _ in secret.hits] == ["/other", "/other-sync"]
    for seen in secret.headers:
        assert seen["x-trace"] == "t1" and seen["accept"] == "text/plain"
        assert not {k.lower() for k in CREDENTIALS} & set(seen), seen


def test_redirect_to_loopback_blocked_under_default_policy(servers: dict[str, Server]) -> None:
    public, secret = servers["public"], servers["secret"]
    backend = LoopbackOnlyBackend(public)
    resolver = StaticResolver({"files.example": [STAND_IN]})

    async def go() -> None:
        async with safe_client(EgressPolicy(), resolver, network_backend=backend) as client:
            with pytest.raises(EgressBlocked, match="loopback"):
                await client.get(f"http://files.example:{public.port}/redirect?to={secret.url}/")

    asyncio.run(go())
    assert secret.hits == []
    assert len(public.hits) == 1


@pytest.mark.parametrize("path", ["/big?n=200000", "/chunked?n=204800"])
def test_response_size_is_capped(servers: dict[str, Server], path: str) -> None:
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=100_000)

    async def go() -> None:
        async with safe_client(policy) as client:
            with pytest.raises(EgressLimitExceeded, match="max_bytes"):
                await client.get(servers["public"].url + path)
            ok = await client.get(servers["public"].url + "/big?n=1000")
            assert len(ok.content) == 1000

    asyncio.run(go())


def test_response_time_is_capped(servers: dict[str, Server]) -> None:
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, timeout_s=0.5)

    async def go() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with safe_client(policy) as client:
            with pytest.raises(EgressLimitExceeded, match="timeout_s"):
                await client.get(servers["public"].url + "/slow?n=50")  # 5 s of trickle, one byte per 0.1 s
        return loop.time() - start

    assert asyncio.run(go()) < 3.0


def test_sync_time_cap_covers_trickled_headers_and_body(servers: dict[str, Server]) -> None:
    """Blocking reads each had their own timeout and the deadline was checked between body chunks only:
    headers sent one byte per 0.1 s, then no body, were answered as a 204 after 5 s for timeout_s 0.5.
    Now every read waits only until the deadline."""
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, timeout_s=0.5)
    with safe_sync_client(policy) as client:
        with pytest.raises(EgressLimitExceeded, match="timeout_s"):
            client.get(servers["public"].url + "/slow-headers?n=20")
        with pytest.raises(EgressLimitExceeded, match="timeout_s"):
            client.get(servers["public"].url + "/slow?n=50")
        assert client.get(servers["public"].url + "/").text == "PUBLIC"  # a fresh deadline per request


class SlowResolver:
    """A name server that takes 0.4 s to answer (an attacker's own DNS can hold each look-up)."""

    async def resolve(self, host: str) -> list[str]:
        await asyncio.sleep(0.4)
        return ["127.0.0.1"]

    def resolve_sync(self, host: str) -> list[str]:
        time.sleep(0.4)
        return ["127.0.0.1"]


def test_time_cap_counts_the_dns_look_up(servers: dict[str, Server]) -> None:
    """0.4 s of DNS, then a body that trickles for 0.4 s: over timeout_s 0.6 in total (each half was under)."""
    policy = EgressPolicy(allow_networks=LOOPBACK.allow_networks, timeout_s=0.6)
    url = f"http://slow-dns.example:{servers['public'].port}/slow?n=4"

    async def go() -> None:
        async with safe_client(policy, SlowResolver()) as client:
            with pytest.raises(EgressLimitExceeded, match="timeout_s"):
                await client.get(url)

    asyncio.run(go())
    with safe_sync_client(policy, SlowResolver()) as client, pytest.raises(EgressLimitExceeded, match="timeout_s"):
        client.get(url)


def test_sync_client_blocks_and_fetches(servers: dict[str, Server]) -> None:
    with safe_sync_client() as client, pytest.raises(EgressBlocked):
        client.get(servers["secret"].url + "/")
    with safe_sync_client(EgressPolicy(allow_networks=LOOPBACK.allow_networks, max_bytes=5000)) as client:
        assert client.get(servers["public"].url + "/").text == "PUBLIC"
        with pytest.raises(EgressLimitExceeded):
            client.get(servers["public"].url + "/chunked?n=10240")
        with pytest.raises(EgressBlocked, match="metadata"):
            client.get(f"{servers['public'].url}/redirect?to=http://[fd00:ec2::254]/")
    assert servers["secret"].hits == []


def _tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A CA-signed certificate for `name`: (server context, client context trusting the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "owstack test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    client_ctx = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server_ctx, client_ctx


def test_https_keeps_sni_host_and_certificate_check(tmp_path: Path, server_factory: Any) -> None:
    name = "api.tls-test.example"
    server_ctx, client_ctx = _tls_pair(tmp_path, name)
    server = server_factory("TLS", tls=server_ctx)
    resolver = StaticResolver({name: ["127.0.0.1"], "other.tls-test.example": ["127.0.0.1"]})

    async def go() -> str:
        async with safe_client(LOOPBACK, resolver, ssl_context=client_ctx) as client:
            r = await client.get(f"https://{name}:{server.port}/tls")
            with pytest.raises(httpx.ConnectError):  # same address, wrong name: certificate refused
                await client.get(f"https://other.tls-test.example:{server.port}/")
            return r.text

    assert asyncio.run(go()) == "TLS"
    assert server.hits == [("/tls", f"{name}:{server.port}")]
    assert server.sni[0] == name


def test_check_url_uses_the_resolver_for_every_address() -> None:
    resolver = StaticResolver({"mixed.example": [STAND_IN, "10.0.0.5"], "v6.example": ["2606:4700::1111", "::1"]})

    async def go() -> None:
        d = await check_url("https://mixed.example/", EgressPolicy(), resolver)
        assert not d.allowed and "10.0.0.5" in d.reason and "private" in d.reason
        assert d.addresses == (STAND_IN, "10.0.0.5")
        d = await check_url("https://v6.example/", EgressPolicy(), resolver)
        assert not d.allowed and "loopback" in d.reason
        d = await check_url("https://unknown.example/", EgressPolicy(), resolver)
        assert not d.allowed and "cannot resolve" in d.reason

    asyncio.run(go())
