"""Egress red team (2026-12-03): the classic SSRF bypass lists (PayloadsAllTheThings, Orange Tsai's URL
parser confusion, cloud metadata endpoints) against `check_url`, under the default policy and under an
`allow_networks` that opens every private, link-local and unique-local range; then a real fetch of a
loopback server through the transport (direct, via redirects, with proxy variables set) that must never
reach it. The first four tests pin the misses this pass found and fixed, one class each."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import httpx
import pytest
from test_egress_transport import STAND_IN, LoopbackOnlyBackend

from owstack.security.egress import (
    EgressBlocked,
    EgressPolicy,
    StaticResolver,
    address_problem,
    check_url,
    check_url_sync,
    safe_client,
    safe_sync_client,
)

PUBLIC = "93.184.216.34"
RESOLVER = StaticResolver(
    {
        "allowed.example": [PUBLIC],
        "a.allowed.example": [PUBLIC],
        "localtest.me": ["127.0.0.1"],
        "sub.localtest.me": ["127.0.0.1"],
        "127.0.0.1.nip.io": ["127.0.0.1"],
        "169.254.169.254.nip.io": ["169.254.169.254"],
        "spoofed.burpcollaborator.net": ["127.0.0.1"],
        "metadata.nicob.net": ["169.254.169.254"],
        "1ynrnhl.xip.io": ["169.254.169.254"],
        "mixed.example": [PUBLIC, "127.0.0.1"],
        "mixed6.example": [PUBLIC, "::1"],
        "mapped.example": ["::ffff:127.0.0.1"],
        "nat64.example": ["64:ff9b::a9fe:a9fe"],
        "zone.example": ["fe80::a9fe:a9fe%eth0"],
        "empty.example": [],
        "garbage.example": ["not-an-address"],
        # names that a real resolver answers with a *public* address or, inside the cloud, the metadata one
        "metadata.packet.net": ["147.75.0.1"],
        "api.metadata.cloud.ibm.com": [PUBLIC],
        "rancher-metadata": ["169.254.169.250"],
        "kubernetes.default.svc": ["10.96.0.1"],
        "kubernetes.default.svc.cluster.local": ["10.96.0.1"],
    }
)
#: every private, link-local and unique-local range opened: what a careless operator might write
BROAD = EgressPolicy(
    allow_networks=tuple(
        ipaddress.ip_network(n)
        for n in (
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "fc00::/7",
            "fe80::/10",
        )
    )
)


def decide(url: str, policy: EgressPolicy | None = None) -> tuple[bool, str]:
    d = asyncio.run(check_url(url, policy or EgressPolicy(), RESOLVER))
    s = check_url_sync(url, policy or EgressPolicy(), RESOLVER)
    assert (s.allowed, s.reason, s.addresses) == (d.allowed, d.reason, d.addresses)
    return d.allowed, d.reason


# -- 1. dotted-decimal octets with leading zeros: inet_aton reads them as octal, Python's ipaddress before
#       3.9.5 (CVE-2021-29921), Go before 1.17 (CVE-2021-29923) and Java as decimal; every reading is judged


@pytest.mark.parametrize(
    ("url", "reading"),
    [
        ("http://0127.0.0.1/", "127.0.0.1"),  # octal 87.0.0.1, public
        ("http://010.0.0.1/", "10.0.0.1"),  # octal 8.0.0.1
        ("http://0172.016.0.1/", "172.16.0.1"),  # octal 122.14.0.1
        ("http://0100.0100.0100.0200/", "100.100.100.200"),  # octal 64.64.64.128; decimal: Alibaba metadata
        ("http://0127.0.0.1:8080/", "127.0.0.1"),
        ("http://0127.1/", "127.0.0.1"),
    ],
)
def test_leading_zero_octets_are_judged_in_their_decimal_reading_too(url: str, reading: str) -> None:
    for policy in (EgressPolicy(), EgressPolicy(allow_networks=(ipaddress.ip_network("0.0.0.0/0"),))):
        allowed, why = decide(url, policy)
        assert not allowed
        assert reading in why and "decimal" in why


def test_leading_zero_readings_that_are_all_public_pass_and_connect_to_the_inet_aton_one() -> None:
    d = asyncio.run(check_url("http://0110.0.0.1/", EgressPolicy(), RESOLVER))  # 72.0.0.1 or 110.0.0.1
    assert d.allowed, d.reason
    assert d.addresses == ("72.0.0.1",)
    assert decide("http://127.000.000.001/")[0] is False  # both readings are 127.0.0.1
    allowed, why = decide("http://0127.0.0.1/", EgressPolicy(deny_hosts=("127.0.0.1",)))
    assert not allowed and "deny_hosts" in why


# -- 2. metadata and credential endpoints missing from the always-refused list: reachable once an
#       allow_networks entry opens the link-local or unique-local block they sit in


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.252:988/computeMetadata/v1/",  # GKE metadata server (Workload Identity)
        "http://169.254.169.250/latest/self",  # Rancher metadata
        "http://169.254.42.42/conf",  # Scaleway
        "http://[fd00:42::42]/conf",  # Scaleway over IPv6
        "http://[fd00:c1::a9fe:a9fe]/opc/v2/instance/",  # Oracle Cloud over IPv6
        "http://[fd00:a9fe:a9fe::1]/v1/token",  # Akamai / Linode over IPv6
        "http://[fd00:100::100:200]/latest/meta-data/",  # Alibaba Cloud over IPv6
        "http://[fe80::a9fe:a9fe]/openstack/latest/",  # OpenStack over IPv6
        "http://zone.example/",  # the same, answered by DNS with a zone id
        "http://[::ffff:169.254.42.42]/",
        "http://[64:ff9b::a9fe:a9fc]/",  # NAT64 form of the GKE metadata server
    ],
)
def test_metadata_endpoints_stay_blocked_under_a_broad_allow(url: str) -> None:
    allowed, why = decide(url, BROAD)
    assert not allowed and "metadata" in why
    assert not decide(url)[0]


@pytest.mark.parametrize(
    "url",
    [
        "https://metadata.packet.net/metadata",  # Equinix Metal (formerly Packet): a public address
        "http://api.metadata.cloud.ibm.com/instance_identity/v1/token",  # IBM Cloud VPC
        "http://rancher-metadata/latest/self",
        "http://METADATA.PACKET.NET./userdata",
    ],
)
def test_metadata_names_are_refused_before_dns(url: str) -> None:
    for policy in (EgressPolicy(), BROAD, EgressPolicy(allow_hosts=(url.split("/")[2].lower().rstrip("."),))):
        allowed, why = decide(url, policy)
        assert not allowed and "metadata service name" in why


# -- 3. Kubernetes service names (<service>.<namespace>.svc): internal names, like *.internal and *.local


def test_kubernetes_service_names_are_internal_names() -> None:
    allowed, why = decide("https://kubernetes.default.svc/api", BROAD)
    assert not allowed and "internal name" in why
    assert not decide("https://kubernetes.default.svc.cluster.local/api", BROAD)[0]
    listed = EgressPolicy(allow_hosts=("kubernetes.default.svc",), allow_networks=BROAD.allow_networks)
    assert decide("https://kubernetes.default.svc/api", listed)[0]


# -- 4. an ISATAP interface identifier inside a 6to4 or NAT64 address was not looked at (the embedded
#       IPv4 address decided alone), although it is judged under any other prefix


@pytest.mark.parametrize(
    ("ip", "verdict"),
    [
        ("2002:808:808::5efe:7f00:1", "loopback"),  # 6to4 of 8.8.8.8, ISATAP of 127.0.0.1
        ("2002:808:808::200:5efe:a9fe:a9fe", "metadata"),
        ("2002:808:808::5efe:a00:1", "private"),
        ("2002:808:808::5efe:808:808", None),
        ("2002:808:808::1", None),
    ],
)
def test_isatap_identifier_inside_6to4_is_judged(ip: str, verdict: str | None) -> None:
    problem = address_problem(ipaddress.ip_address(ip))
    if verdict is None:
        assert problem is None
    else:
        assert problem is not None and verdict in problem


# -- the corpus: every entry must be blocked, under the default policy and under BROAD

_CORPUS = r"""
http://127.0.0.1/
http://127.0.0.1:22/
http://127.127.127.127/
http://127.0.1.3/
http://127.0.0.0/
http://127.1/
http://127.0.1/
http://127.000.000.001/
http://0177.0.0.1/
http://0177.0.0.01/
http://00000177.0.0.1/
http://o177.0.0.1/
http://0o177.0.0.1/
http://q177.0.0.1/
http://2130706433/
http://017700000001/
http://0x7f000001/
http://0x7f.0x0.0x0.0x1/
http://0x7f.1/
http://0X7F.1/
http://0x7f.0.0.1/
http://0x00007f.1/
http://127.0.0.1./
http://127.0.0.1../
http://0/
http://0:80/
http://0.0.0.0/
http://0x0/
http://[::]/
http://[::]:80/
http://[::1]/
http://[0000::1]/
http://[0:0:0:0:0:0:0:1]/
http://[::ffff:127.0.0.1]/
http://[::ffff:7f00:1]/
http://[::FFFF:7F00:1]/
http://[0:0:0:0:0:ffff:127.0.0.1]/
http://[::ffff:0:127.0.0.1]/
http://[::127.0.0.1]/
http://[::7f00:1]/
http://[2002:7f00:1::]/
http://[2002:a9fe:a9fe::]/
http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/
http://[64:ff9b::127.0.0.1]/
http://[64:ff9b::a9fe:a9fe]/
http://[64:ff9b:1::7f00:1]/
http://[64:ff9b:1:7f00:0:100::]/
http://[fe80::1%25eth0]/
http://[fe80::1%eth0]/
http://[fd00:ec2::254]/
http://[fd20:ce::254]/
http://[::ffff:a9fe:a9fe]/
http://[0:0:0:0:0:ffff:169.254.169.254]/
http://[::ffff:0.0.0.0]/
http://[ff02::1]/
http://[[::1]]/
http://[::1]@allowed.example/
http://allowed.example@[::1]/
http://allowed.example@127.0.0.1/
http://allowed.example:80@127.0.0.1/
http://127.0.0.1#@allowed.example/
http://127.0.0.1?@allowed.example/
http://127.0.0.1/@allowed.example/
http://allowed.example\@127.0.0.1/
http://allowed.example&@127.0.0.1#@allowed.example/
http://foo@127.0.0.1:80@allowed.example/
http://foo@127.0.0.1 @allowed.example/
http://127.1.1.1:80\@127.2.2.2:80/
http://127.1.1.1:80\@@127.2.2.2:80/
http://127.1.1.1:80:\@@127.2.2.2:80/
http://127.1.1.1:80#\@127.2.2.2:80/
http://127.0.0.1:11211:80/
http://allowed.example%40127.0.0.1/
http://127.0.0.1%23@allowed.example/
http://127.0.0.1:80%2f@allowed.example/
http://@127.0.0.1/
http://:@127.0.0.1/
http://127。0。0。1/
http://127．0．0．1/
http://127｡0｡0｡1/
http://①②⑦.⓪.⓪.①/
http://⑯⑨。②⑤④。⑯⑨｡②⑤④/
http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/
http://ｌｏｃａｌｈｏｓｔ/
http://%6c%6f%63%61%6c%68%6f%73%74/
http://%31%32%37%2e%30%2e%30%2e%31/
http://127.0.0.1%00.allowed.example/
HTTP://127.0.0.1/
hTtP://127.0.0.1/
HTTPS://127.0.0.1/
http://localhost/
http://localhost./
http://LOCALHOST/
http://LocalHost:80/
http://api.localhost/
http://localtest.me/
http://sub.localtest.me/
http://127.0.0.1.nip.io/
http://169.254.169.254.nip.io/
http://spoofed.burpcollaborator.net/
http://metadata.nicob.net/
http://1ynrnhl.xip.io/
http://mixed.example/
http://mixed6.example/
http://mapped.example/
http://nat64.example/
http://empty.example/
http://garbage.example/
http://host.docker.internal/
http://printer.local/
http://127.0.0.1:0/
http://127.0.0.1:65536/
http://127.0.0.1:-1/
http://allowed.example:0/
http://allowed.example:65536/
http://allowed.example:-80/
http://allowed.example:+80/
http://allowed.example:0x50/
http://localhost:+11211aaa/
http://localhost:00011211aaaa/
file:///etc/passwd
file://127.0.0.1/etc/passwd
gopher://127.0.0.1:6379/_INFO
dict://127.0.0.1:11211/stat
ftp://127.0.0.1/
ldap://127.0.0.1/
sftp://127.0.0.1/
tftp://127.0.0.1/
jar:http://127.0.0.1!/
netdoc:///etc/passwd
ws://127.0.0.1/
data:text/plain,hi
http+unix://%2Fvar%2Frun%2Fdocker.sock/info
0://allowed.example:80;http://127.0.0.1:80/
http://allowed.example$127.0.0.1/
http://169.254.169.254/latest/meta-data/
http://169.254.169.254:80/
http://169.254.169.254./
http://2852039166/
http://7147006462/
http://0xa9fea9fe/
http://0xA9.0xFE.0xA9.0xFE/
http://0x41414141A9FEA9FE/
http://0251.0376.0251.0376/
http://0251.00376.000251.0000376/
http://169.254.43518/
http://169.16689662/
http://425.510.425.510/
http://metadata.google.internal/computeMetadata/v1/
http://metadata.google.internal./
http://METADATA.GOOGLE.INTERNAL/
http://metadata/
http://metadata.goog/
http://instance-data/
http://instance-data.ec2.internal/
http://metadata.tencentyun.com/
http://100.100.100.200/latest/meta-data/
http://169.254.170.2/v2/credentials
http://169.254.170.23/v1/credentials
http://192.0.0.192/latest/
http://168.63.129.16/
http://169.254.0.23/
http://[::ffff:6464:64c8]/
http://0127.0.0.1/
http://0100.0100.0100.0200/
http://169.254.169.252:988/
http://169.254.42.42/conf
http://[fd00:c1::a9fe:a9fe]/
http://[fe80::a9fe:a9fe]/
http://zone.example/
https://metadata.packet.net/metadata
http://rancher-metadata/latest
http://api.metadata.cloud.ibm.com/
http://kubernetes.default.svc/
http://kubernetes.default.svc.cluster.local/
"""
CORPUS = [line for line in _CORPUS.splitlines() if line]  # one URL a line (one has a space in it)


@pytest.mark.parametrize("policy", [EgressPolicy(), BROAD], ids=["default", "broad"])
def test_bypass_corpus_is_blocked(policy: EgressPolicy) -> None:
    missed = [url for url in CORPUS if decide(url, policy)[0]]
    assert missed == []


# -- a real fetch: a loopback server plays the internal target; nothing may reach it

# the test network is test_egress_transport.py's: STAND_IN reaches the `public` server, loopback passes


def test_fetches_never_reach_the_loopback_server(servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    public, secret = servers["public"], servers["secret"]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, secret.url)  # a proxy would be the internal server itself
    monkeypatch.setenv("NO_PROXY", "")
    p = secret.port
    resolver = StaticResolver(
        {"good.example": [STAND_IN], "localtest.me": ["127.0.0.1"], "mixed.example": [STAND_IN, "127.0.0.1"]}
    )
    hosts = ["127.0.0.1", "127.1", "0x7f.1", "2130706433", "017700000001", "127.0.0.1.", "0", "0.0.0.0",
             "[::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]",
             "localhost", "LOCALHOST", "localhost.", "localtest.me", "mixed.example", "127。0。0。1"]  # fmt: skip
    direct = [
        form.format(host=h, port=p)
        for h in hosts
        for form in ("http://{host}:{port}/", "HTTP://{host}:{port}/", "http://{host}:{port}#@good.example/")
    ]
    hops = [f"http://127.0.0.1:{p}/", f"//127.0.0.1:{p}/", f"http://[::1]:{p}/", f"http://2130706433:{p}/",
            f"http://localtest.me:{p}/", f"http://u:p@127.0.0.1:{p}/", "file:///etc/passwd", f"gopher://127.0.0.1:{p}/_x",
            f"dict://127.0.0.1:{p}/", f"/redirect?to=http://127.0.0.1:{p}/", "/loop"]  # fmt: skip
    network = LoopbackOnlyBackend(public)

    async def go() -> int:
        refused = 0
        async with safe_client(EgressPolicy(), resolver, network_backend=network) as client:
            requests = [(url, None) for url in direct]
            requests += [(f"http://good.example:{public.port}/redirect", {"to": to}) for to in hops]
            for url, params in requests:
                try:
                    r = await client.get(url, params=params)
                except (EgressBlocked, httpx.TooManyRedirects, httpx.UnsupportedProtocol):
                    refused += 1
                else:
                    assert "SECRET" not in r.text, url
        return refused

    assert asyncio.run(go()) == len(direct) + len(hops)
    with safe_sync_client(EgressPolicy(), resolver) as client:
        for url in direct[:12]:
            with pytest.raises(EgressBlocked):
                client.get(url)
    assert secret.hits == []
    assert {host for host, _ in network.connects} <= {STAND_IN}


# -- 5. host lists given in code (not through the config, which normalises them): a deny entry in capitals,
#       with a trailing dot or an IP address spelled long did not match the parsed host


@pytest.mark.parametrize(
    ("url", "deny"),
    [
        ("http://allowed.example/", "ALLOWED.Example."),
        ("http://a.allowed.example/", "*.Allowed.EXAMPLE"),
        ("http://[::ffff:5db8:d822]/", "0:0:0:0:0:ffff:93.184.216.34"),
        ("http://[2606:2800:220:1::1]/", "[2606:2800:0220:0001:0000:0000:0000:0001]"),
    ],
)
def test_deny_hosts_given_in_code_match_every_spelling(url: str, deny: str) -> None:
    allowed, why = decide(url, EgressPolicy(deny_hosts=(deny,)))
    assert not allowed and "deny_hosts" in why


# -- 6. the host's own public address: a service bound to 0.0.0.0 (the gateway's admin port, a database,
#       a container runtime) answers on it as on loopback, and nothing refused it


def test_this_hosts_own_addresses_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from owstack.security.egress import addresses

    own = (ipaddress.ip_network(f"{PUBLIC}/32"), ipaddress.ip_network("2606:2800:220:1::7/128"))
    monkeypatch.setattr(addresses, "own_networks", lambda: own)
    for url in (
        f"http://{PUBLIC}/",
        "http://allowed.example/",
        f"http://[::ffff:{PUBLIC}]/",
        "http://[2606:2800:220:1::7]/",
    ):
        for policy in (EgressPolicy(), EgressPolicy(allow_networks=(ipaddress.ip_network("0.0.0.0/0"),))):
            allowed, why = decide(url, policy)
            assert not allowed and "address of this host" in why, (url, why)
    opened = EgressPolicy(allow_networks=(ipaddress.ip_network("93.184.216.0/24"),))
    assert decide(f"http://{PUBLIC}/", opened)[0]
    assert decide("http://[2606:2800:220:1::8]/")[0]


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="read from /proc on Linux")
def test_own_networks_are_read_from_the_system() -> None:
    from owstack.security.egress.addresses import own_networks

    assert any(ipaddress.ip_address("127.0.0.1") in net for net in own_networks())
