"""check_url: odd IPv4 spellings, IPv6 wrappers, metadata, parser confusion, host lists."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from owstack.config.load import load
from owstack.errors import ConfigError
from owstack.security.config import EgressSection
from owstack.security.egress import EgressPolicy, StaticResolver, check_url, check_url_sync

PUBLIC = "93.184.216.34"
RESOLVER = StaticResolver(
    {
        "example.com": [PUBLIC, "2606:2800:220:1:248:1893:25c8:1946"],
        "xn--bcher-kva.example": [PUBLIC],
        "evil.com": [PUBLIC],
        "api.partner.example": [PUBLIC],
        "files.partner.example": [PUBLIC],
        "mcp.corp.internal": ["10.20.0.7"],
        "rebind.example": ["127.0.0.1"],
    }
)


def decide(url: str, policy: EgressPolicy | None = None) -> tuple[bool, str, tuple[str, ...]]:
    d = asyncio.run(check_url(url, policy or EgressPolicy(), RESOLVER))
    sync = check_url_sync(url, policy or EgressPolicy(), RESOLVER)
    assert (sync.allowed, sync.reason, sync.addresses) == (d.allowed, d.reason, d.addresses)
    return d.allowed, d.reason, d.addresses


@pytest.mark.parametrize(
    ("url", "reason", "address"),
    [
        ("http://2130706433/", "loopback", "127.0.0.1"),
        ("http://0177.0.0.1/", "loopback", "127.0.0.1"),
        ("http://0x7f.1/", "loopback", "127.0.0.1"),
        ("http://127.1/", "loopback", "127.0.0.1"),
        ("http://0x7f000001/", "loopback", "127.0.0.1"),
        ("http://127.0.0.1./", "loopback", "127.0.0.1"),
        ("http://0/", "unspecified", "0.0.0.0"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1: loopback", None),
        ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1: loopback", None),
        ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1: loopback", None),
        ("http://[2002:7f00:0001::]/", "6to4 form of 127.0.0.1: loopback", None),
        ("http://[64:ff9b::7f00:1]/", "NAT64 form of 127.0.0.1: loopback", None),
        ("http://[64:ff9b::a00:1]/", "NAT64 form of 10.0.0.1: private", None),
        ("http://[64:ff9b:1::1]/", "local-use NAT64", None),
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo", None),
        ("http://[64:ff9b:1:a00:0:100:808:808]/", "local-use NAT64 form of 10.0.0.1", None),
        ("http://[2001:4860::5efe:7f00:1]/", "ISATAP form of 127.0.0.1: loopback", None),
        ("http://[::1]/", "loopback", "::1"),
        ("http://[::]/", "unspecified", "::"),
        ("http://[fe80::1]/", "link-local", "fe80::1"),
        ("http://[fc00::1]/", "private", "fc00::1"),
        ("http://[ff02::1]/", "multicast", "ff02::1"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address", "169.254.169.254"),
        ("http://[fd00:ec2::254]/", "cloud metadata address", "fd00:ec2::254"),
        ("http://100.100.100.200/", "cloud metadata address", "100.100.100.200"),
        ("http://168.63.129.16/", "cloud metadata address", "168.63.129.16"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata address", None),
        ("http://0xa9.0xfe.0xa9.0xfe/", "cloud metadata address", "169.254.169.254"),
        ("http://10.1.2.3/", "private", "10.1.2.3"),
        ("http://172.16.0.1/", "private", "172.16.0.1"),
        ("http://192.168.1.1/", "private", "192.168.1.1"),
        ("http://100.64.0.1/", "shared address space (CGNAT)", "100.64.0.1"),
        ("http://169.254.1.1/", "link-local", "169.254.1.1"),
        ("http://224.0.0.1/", "multicast", "224.0.0.1"),
        ("http://240.0.0.1/", "reserved", "240.0.0.1"),
        ("http://255.255.255.255/", "reserved", "255.255.255.255"),
        ("http://198.18.0.1/", "benchmarking", "198.18.0.1"),
        ("http://rebind.example/", "rebind.example resolves to 127.0.0.1", "127.0.0.1"),
    ],
)
def test_non_public_addresses_are_blocked(url: str, reason: str, address: str | None) -> None:
    allowed, why, addresses = decide(url)
    assert not allowed
    assert reason in why
    if address is not None:
        assert addresses == (address,)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service name"),
        ("http://metadata.goog/", "cloud metadata service name"),
        ("http://instance-data/", "cloud metadata service name"),
        ("http://localhost:8080/", "internal name"),
        ("http://api.localhost/", "internal name"),
        ("http://printer.local/", "internal name"),
        ("http://evil.com@127.0.0.1/", "userinfo"),
        ("http://user:pass@example.com/", "userinfo"),
        ("http://evil.com\\@127.0.0.1/", "backslash"),
        ("http:\\\\127.0.0.1/", "backslash"),
        ("http://127.0.0.1 /", "whitespace"),
        (" http://example.com/", "whitespace"),
        ("http://exam\tple.com/", "whitespace or control"),
        ("http://example.com/\x00", "control"),
        ("http://exa\u200bmple.com/", "Unicode mapping"),
        ("http://１２７.０.０.１/", "Unicode mapping"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://1.2.3.4.5/", "not a valid IPv4"),
        ("http://256.0.0.1/", "out of range"),
        ("http://08.0.0.1/", "octal"),
        ("http://example.com:99999/", "port"),
        ("http://example.com:-1/", "port"),
        ("http://[::1/", "unclosed"),
        ("http://a:b:c/", "more than one"),
        ("http:///path", "empty host"),
        ("example.com/path", "no scheme"),
        ("http:example.com", "no '//'"),
        ("not a url", "cannot parse"),
        ("", "no scheme"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed"),
        ("http://" + "a" * 9000 + ".com/", "longer than"),
        ("http://ex_ample!.com/", "not a valid host name"),
        ("http://unknown-name.example/", "cannot resolve"),
    ],
)
def test_names_and_parser_tricks_are_blocked(url: str, reason: str) -> None:
    allowed, why, _ = decide(url)
    assert not allowed
    assert reason in why


def test_fragment_and_at_sign_read_as_the_client_reads_them() -> None:
    allowed, why, addresses = decide("http://127.0.0.1#@evil.com/")
    assert not allowed and addresses == ("127.0.0.1",) and "loopback" in why
    allowed, why, addresses = decide("http://evil.com#@127.0.0.1/")
    assert allowed and addresses == (PUBLIC,)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://example.com:8443/a?b=c#d",
        "http://bücher.example/",
        "http://93.184.216.34/",
    ],
)
def test_public_urls_are_allowed_with_every_address(url: str) -> None:
    allowed, why, addresses = decide(url)
    assert allowed, why
    assert PUBLIC in addresses


def test_allow_and_deny_lists() -> None:
    policy = EgressPolicy.from_section(
        EgressSection(allow_hosts=("*.partner.example",), deny_hosts=("files.partner.example",))
    )
    assert decide("https://api.partner.example/", policy)[0]
    allowed, why, _ = decide("https://files.partner.example/", policy)
    assert not allowed and "deny_hosts" in why
    allowed, why, _ = decide("https://example.com/", policy)
    assert not allowed and "not in allow_hosts" in why
    allowed, why, _ = decide("https://partner.example/", policy)  # *.x does not match the apex
    assert not allowed


def test_allow_networks_opens_an_internal_service_but_never_metadata() -> None:
    assert not decide("http://mcp.corp.internal/")[0]
    policy = EgressPolicy.from_section(
        EgressSection(allow_hosts=("mcp.corp.internal",), allow_networks=("10.20.0.0/16", "169.254.0.0/16"))
    )
    allowed, why, addresses = decide("http://mcp.corp.internal/", policy)
    assert allowed, why
    assert addresses == ("10.20.0.7",)
    allowed, why, _ = decide("http://169.254.169.254/", EgressPolicy(allow_networks=policy.allow_networks))
    assert not allowed and "metadata" in why
    assert not decide("http://10.30.0.1/", EgressPolicy(allow_networks=policy.allow_networks))[0]
    assert decide("http://169.254.10.10/", EgressPolicy(allow_networks=policy.allow_networks))[0]


def test_scheme_list() -> None:
    policy = EgressPolicy.from_section(EgressSection(allow_schemes=("https",)))
    allowed, why, _ = decide("http://example.com/", policy)
    assert not allowed and "scheme 'http'" in why


def test_egress_section_validation(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="CIDR"):
        EgressSection(allow_networks=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="host name"):
        EgressSection(allow_hosts=("http://x",))
    assert EgressSection().max_redirects == 5
    assert EgressPolicy.from_section().allow_networks == ()
    assert EgressPolicy.from_section(allow_networks=["127.0.0.0/8"]).allow_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
    )


def test_security_section_in_config_file(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "owstack.yaml"
    path.write_text(
        "security:\n  guard: {mode: block, block_at: medium}\n  egress: {allow_networks: [10.0.0.0/8], max_bytes: 5}\n"
    )
    cfg = load(path)
    assert cfg.file.security.guard.mode == "block"
    assert cfg.file.security.egress.max_bytes == 5
    path.write_text("security:\n  guard: {mode: loud}\n")
    with pytest.raises(ConfigError, match=r"security\.guard\.mode"):
        load(path)
