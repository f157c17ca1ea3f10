"""Is an address public? Is a name internal or a cloud metadata service?

Every IPv6 form that carries an IPv4 address is unwrapped and the IPv4 address judged too: IPv4-mapped
(`::ffff:127.0.0.1`, which `is_loopback` missed before Python 3.13), IPv4-compatible (`::127.0.0.1`),
6to4 (`2002:7f00:1::`) and NAT64 (`64:ff9b::7f00:1`). Teredo (`2001::/32`) and the local-use NAT64
prefix (`64:ff9b:1::/48`) are refused outright.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache

from owstack.security.data_files import load

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_THIS_NET = ipaddress.IPv4Network("0.0.0.0/8")
_BENCHMARK = ipaddress.IPv4Network("198.18.0.0/15")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_V4_COMPAT = ipaddress.IPv6Network("::/96")


@cache
def metadata_addresses() -> frozenset[IPAddress]:
    return frozenset(ipaddress.ip_address(e["address"]) for e in load("egress")["metadata_addresses"])


@cache
def metadata_names() -> frozenset[str]:
    return frozenset(e["name"] for e in load("egress")["metadata_names"])


@cache
def internal_suffixes() -> tuple[str, ...]:
    return tuple(e["suffix"] for e in load("egress")["internal_suffixes"])


def name_problem(host: str) -> tuple[str, str] | None:
    """Why a host *name* is refused before any DNS look-up, as (kind, reason), or None.

    kind is `metadata` (never allowed) or `internal` (allowed only when listed exactly in allow_hosts)."""
    name = host.rstrip(".")
    if name in metadata_names():
        return "metadata", f"{name} is a cloud metadata service name"
    for suffix in internal_suffixes():
        if name == suffix or name.endswith("." + suffix):
            return "internal", f"{name} is an internal name (.{suffix})"
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address carried by an IPv6 address, with the name of the form, or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip in _SIXTOFOUR:
        v4 = ip.sixtofour
        return (v4, "6to4") if v4 is not None else None
    if ip in _V4_COMPAT and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def _category(ip: IPAddress) -> str | None:
    """The special-purpose category of a plain address, or None if it is public."""
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NET):
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared address space (CGNAT)"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _BENCHMARK:
        return "benchmarking"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "special-purpose"
    return None


def address_problem(ip: IPAddress, allow_networks: Iterable[Network] = ()) -> str | None:
    """Why connecting to `ip` is refused, or None if it is allowed.

    Cloud metadata addresses are always refused. An address inside one of `allow_networks` is allowed
    (an explicit opt-in for an internal service); otherwise it must be public.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    candidates: list[tuple[IPAddress, str]] = []
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO:
            return f"{ip} is a Teredo tunnel address"
        if ip in _NAT64_LOCAL:
            return f"{ip} is a local-use NAT64 address"
        inner = embedded_ipv4(ip)
        if inner is not None:
            candidates.append((inner[0], f"{inner[1]} form of {inner[0]}: "))
    candidates.append((ip, ""))
    for addr, form in candidates:
        if addr in metadata_addresses():
            return f"{ip} is a cloud metadata address" + (f" ({form.rstrip(': ')})" if form else "")
    allowed = list(allow_networks)
    for addr, _ in candidates:
        if any(addr.version == net.version and addr in net for net in allowed):
            return None
    for addr, form in candidates:
        category = _category(addr)
        if category is not None:
            return f"{ip} is not public ({form}{category})"
    return None
