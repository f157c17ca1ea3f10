"""Egress: compression bombs against the decoded size, and the IANA special-purpose blocks (metadata and
credential services, 192.0.0.0/24, 3fff::/20, NAT64) with `allow_networks` that is broader than them."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from owstack.security.egress import EgressLimitExceeded, EgressPolicy, address_problem, safe_client, safe_sync_client

LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")


def policy(**kw: Any) -> EgressPolicy:
    return EgressPolicy(allow_networks=(LOOPBACK_NET,), **kw)


@pytest.mark.parametrize("coding", ["gzip", "gzip,gzip", "deflate", "x-gzip,deflate,gzip"])
def test_compression_bombs_are_stopped_on_the_decoded_size(servers: dict[str, Any], coding: str) -> None:
    url = f"{servers['public'].url}/encoded?coding={coding}&n={64 << 20}"  # 64 MiB of zeros, ~64 KiB-300 B sent

    async def go() -> None:
        async with safe_client(policy(max_bytes=1 << 20)) as client:
            with pytest.raises(EgressLimitExceeded, match=r"max_bytes|times the bytes"):
                await client.get(url)

    asyncio.run(go())
    with safe_sync_client(policy(max_bytes=1 << 20)) as client, pytest.raises(EgressLimitExceeded):
        client.get(url)
    assert servers["public"].accept_encoding[0] == "gzip, deflate"  # only codings the transport can bound


def test_ratio_limit_applies_below_max_bytes(servers: dict[str, Any]) -> None:
    url = f"{servers['public'].url}/encoded?coding=gzip&n={8 << 20}"
    with (
        safe_sync_client(policy(max_bytes=64 << 20, max_ratio=100)) as client,
        pytest.raises(EgressLimitExceeded, match="times the bytes"),
    ):
        client.get(url)
    with safe_sync_client(policy(max_bytes=64 << 20, max_ratio=10_000)) as client:
        assert len(client.get(url).content) == 8 << 20


def test_ordinary_compressed_responses_are_decoded(servers: dict[str, Any]) -> None:
    for coding in ("gzip", "deflate", "gzip,gzip"):
        with safe_sync_client(policy()) as client:
            r = client.get(f"{servers['public'].url}/encoded?coding={coding}&n=5000")
        assert r.content == b"\0" * 5000 and "content-encoding" not in r.headers


def _blocked(ip: str, *nets: str) -> str | None:
    return address_problem(ipaddress.ip_address(ip), [ipaddress.ip_network(n) for n in nets])


@pytest.mark.parametrize(
    ("ip", "nets"),
    [
        ("169.254.170.23", ["169.254.0.0/16"]),  # EKS Pod Identity agent
        ("fd00:ec2::23", ["fc00::/7"]),
        ("fd20:ce::254", ["fc00::/7"]),  # GCP metadata over IPv6
        ("fd00:ec2::254", ["fd00::/8"]),
        ("169.254.169.254", ["169.254.169.0/24"]),
        ("::ffff:169.254.170.23", ["169.254.0.0/16"]),
        ("192.0.0.8", ["192.0.0.0/24"]),  # dummy address: never opened
        ("192.0.0.100", ["192.0.0.0/16"]),  # broader than the /24 special block
        ("192.0.0.100", []),
        ("3fff::1", ["3000::/4"]),
        ("3fff::1", []),
        ("2001:db8::1", ["2001::/16"]),
        ("10.0.0.5", ["0.0.0.0/0"]),
        ("fd12::1", ["::/0"]),
        ("64:ff9b::a9fe:aa17", ["169.254.0.0/16"]),  # NAT64 form of the EKS agent
        ("64:ff9b::7f00:1", []),
        ("64:ff9b:1::a00:1", []),
        ("255.255.255.255", ["255.0.0.0/8"]),
        # local-use NAT64 in the RFC 6052 layouts other than /96: 10.0.0.1 (/48), 10.0.0.8 (/64), IMDS (/48);
        # each reads as a public address (8.8.8.8) when only the last 32 bits are looked at
        ("64:ff9b:1:a00:0:100:808:808", []),
        ("64:ff9b:1:0:a:0:808:808", []),
        ("64:ff9b:1:a9fe:a9:fe00::", ["169.254.0.0/16"]),
        ("64:ff9b:1::", []),
        # ISATAP interface identifiers carrying loopback, private and IMDS addresses in a global prefix
        ("2606:4700::5efe:7f00:1", []),
        ("2606:4700::200:5efe:a00:1", []),
        ("2606:4700::5efe:a9fe:a9fe", ["169.254.0.0/16"]),
        ("fd12::5efe:a00:1", ["fd12::/16"]),
    ],
)
def test_special_blocks_stay_blocked(ip: str, nets: list[str]) -> None:
    assert _blocked(ip, *nets) is not None


@pytest.mark.parametrize(
    ("ip", "nets"),
    [
        ("64:ff9b::808:808", []),  # NAT64 form of 8.8.8.8 (DNS64 networks)
        ("64:ff9b:1::808:808", []),
        ("64:ff9b:1:5db8:d8:2200::", []),  # 93.184.216.34 in the /48 layout (public in every reading)
        ("2606:4700::5efe:808:808", []),  # ISATAP form of a public address
        ("fd12::5efe:a00:1", ["fd12::/16", "10.0.0.0/8"]),  # both the IPv6 and the IPv4 opened
        ("192.0.0.9", []),  # PCP anycast: globally reachable per IANA
        ("2001:4:112::1", []),
        ("10.20.1.1", ["10.20.0.0/16"]),  # an allow entry inside the block opens it
        ("192.0.0.100", ["192.0.0.0/24"]),
        ("fd12::1", ["fc00::/7"]),
        ("127.0.0.1", ["127.0.0.0/8"]),
        ("8.8.8.8", []),
        ("2606:4700:4700::1111", []),
    ],
)
def test_public_and_explicitly_opened_addresses_pass(ip: str, nets: list[str]) -> None:
    assert _blocked(ip, *nets) is None
