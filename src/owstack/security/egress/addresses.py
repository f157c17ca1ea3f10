"""Is an address public? Is a name internal or a cloud metadata service?

Addresses are judged against the IANA special-purpose registries (`security/data/special_addresses.yaml`),
not against Python's `ipaddress` flags, which lag the registries (3.11 calls 192.0.0.8, 192.0.0.100 and
3fff::1 global, and 64:ff9b::/96 "reserved"). The most specific block containing an address decides:

- cloud metadata and credential services (`security/data/egress.yaml`) are always refused;
- a block that is not globally reachable is refused unless an `allow_networks` entry that contains the
  address lies *inside* that block: `10.20.0.0/16` opens part of 10.0.0.0/8, but `169.254.0.0/16` does not
  open the EKS Pod Identity agent, and `192.0.0.0/16` does not open the 192.0.0.0/24 protocol
  assignments; some blocks (unspecified, broadcast, multicast, dummy) can never be opened;
- IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64 64:ff9b::/96 and
  the local-use 64:ff9b:1::/48) are judged by the IPv4 address they carry, so a DNS64 network's NAT64
  form of a public address is allowed and that of 127.0.0.1 is not; Teredo is refused outright. The
  local-use prefix may carry the IPv4 address in any RFC 6052 layout (/48, /56, /64 or /96: the
  operator's choice, unknown here), so every reading must pass (readings inside 0.0.0.0/8, which no
  translator forwards to, are ignored: the /96 form of 8.8.8.8 reads as 0.0.0.0 under /48);
- an ISATAP interface identifier (`::0:5efe:a.b.c.d`, `::200:5efe:a.b.c.d`, RFC 5214) carries the IPv4
  address of a host behind the site's ISATAP router: it must pass as well as the IPv6 address itself,
  also when that address is a 6to4 or NAT64 form judged by the IPv4 address in its prefix;
- an address of this host's own interfaces (or a local route) is refused unless an `allow_networks` entry
  contains it, public or not: a service bound to 0.0.0.0 answers on the host's public address as it does
  on loopback (`own_networks`, re-read every 10 s: on Linux from /proc; elsewhere, or when /proc cannot be
  read, from psutil's interface list when psutil is installed, else from the source addresses of this
  host's routes to the internet and the addresses of its name).
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from owstack.security.data_files import load

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
#: RFC 6052 section 2.2: where the IPv4 address sits for each prefix length, as (first bit, bits) pieces
#: (bits 64-71, the "u" octet, are always skipped); the local-use /48 allows lengths 48 to 96
_NAT64_LAYOUTS = {48: ((48, 16), (72, 16)), 56: ((56, 8), (72, 24)), 64: ((72, 32),), 96: ((96, 32),)}
_ISATAP_MASK, _ISATAP_ID = 0xFCFFFFFF, 0x00005EFE


@dataclass(frozen=True, slots=True)
class Block:
    network: Network
    name: str
    rfc: str
    globally_reachable: bool
    opt_in: bool = True
    embedded: bool = False
    refuse: bool = False


@cache
def blocks() -> tuple[Block, ...]:
    """Every special-purpose block, most specific first."""
    data = load("special_addresses")
    out = [
        Block(
            ipaddress.ip_network(e["prefix"]),
            str(e["name"]),
            str(e["rfc"]),
            bool(e["global"]),
            bool(e.get("opt_in", True)),
            bool(e.get("embedded", False)),
            bool(e.get("refuse", False)),
        )
        for family in ("ipv4", "ipv6")
        for e in data[family]
    ]
    return tuple(sorted(out, key=lambda b: -b.network.prefixlen))


def block_of(ip: IPAddress) -> Block | None:
    """The most specific special-purpose block that contains `ip` (None: an ordinary public IPv4)."""
    for b in blocks():
        if b.network.version == ip.version and ip in b.network:
            return b
    return None


_OWN_TTL_S = 10.0
_own_cache: tuple[float, tuple[Network, ...]] = (float("-inf"), ())


def _proc_networks() -> set[Network]:
    """Linux: every `host LOCAL` entry of /proc/net/fib_trie (interface addresses and local routes) and
    every address in /proc/net/if_inet6. Elsewhere, or when /proc cannot be read: none."""
    if not sys.platform.startswith("linux"):
        return set()
    out: set[Network] = set()
    try:
        last = None
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif text.endswith(" host LOCAL") and last is not None:
                out.add(ipaddress.ip_network(f"{last}{text.split()[0]}", strict=False))
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            fields = line.split()
            if fields and len(fields[0]) == 32:
                out.add(ipaddress.ip_network(int(fields[0], 16).to_bytes(16, "big")))
    except (OSError, ValueError):
        pass
    return out


def _host(text: str) -> Network | None:
    """`text` (an address, perhaps with an IPv6 zone id) as a one-address network, or None."""
    try:
        return ipaddress.ip_network(text.split("%", 1)[0])
    except ValueError:
        return None


def _psutil_networks() -> set[Network]:
    """Every interface address psutil lists (macOS, Windows, BSD), or none when psutil is not installed."""
    try:
        psutil = importlib.import_module("psutil")
        interfaces = psutil.net_if_addrs()
    except Exception:  # not installed, or it cannot list the interfaces here
        return set()
    families = (socket.AF_INET, socket.AF_INET6)
    found = (_host(a.address) for addrs in interfaces.values() for a in addrs if a.family in families)
    return {net for net in found if net is not None}


#: public destinations whose route gives the host's outgoing source addresses (a UDP connect sends nothing)
_ROUTE_PROBES = ((socket.AF_INET, "8.8.8.8"), (socket.AF_INET6, "2001:4860:4860::8888"))


def _route_networks() -> set[Network]:
    """The source addresses this host uses towards the internet, IPv4 and IPv6 (no packet is sent)."""
    out: set[Network] = set()
    for family, destination in _ROUTE_PROBES:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((destination, 9))
                net = _host(str(probe.getsockname()[0]))
        except OSError:  # no route of that family
            continue
        if net is not None:
            out.add(net)
    return out


@cache
def _hostname_networks() -> frozenset[Network]:
    """The addresses this host's name resolves to, looked up once (it may ask DNS, and mDNS on macOS)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    found = (_host(str(info[4][0])) for info in infos)
    return frozenset(net for net in found if net is not None)


def _read_own_networks() -> tuple[Network, ...]:
    """This host's addresses from the first source that knows them: /proc (Linux), psutil, else the source
    addresses of its routes to the internet and the addresses of its name."""
    for source in (_proc_networks, _psutil_networks):
        found = source()
        if found:
            return tuple(found)
    return tuple(_route_networks() | _hostname_networks())


def own_networks() -> tuple[Network, ...]:
    """This host's own addresses and local routes, re-read at most every 10 s."""
    global _own_cache
    read_at, networks = _own_cache
    now = time.monotonic()
    if now - read_at > _OWN_TTL_S:
        networks = _read_own_networks()
        _own_cache = (now, networks)
    return networks


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


def _nat64_readings(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address a local-use NAT64 address can stand for (one per RFC 6052 layout)."""
    value = int(ip)
    out = []
    for pieces in _NAT64_LAYOUTS.values():
        v4 = 0
        for first, bits in pieces:
            v4 = (v4 << bits) | ((value >> (128 - first - bits)) & ((1 << bits) - 1))
        out.append(ipaddress.IPv4Address(v4))
    usable = [a for a in out if a not in _THIS_NETWORK]
    return usable or out[-1:]


def isatap_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address in an ISATAP interface identifier (`::0:5efe:a.b.c.d`, u/g bits ignored), or None."""
    value = int(ip)
    if (value >> 32) & _ISATAP_MASK != _ISATAP_ID:
        return None
    return ipaddress.IPv4Address(value & 0xFFFFFFFF)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address carried by an IPv6 address, with the name of its form, or None (for the local-use
    NAT64 prefix: its /96 reading; `address_problem` judges the others too)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _SIXTOFOUR:
        v4 = ip.sixtofour
        return (v4, "6to4") if v4 is not None else None
    b = block_of(ip)
    if b is not None and b.embedded and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), b.name  # NAT64 (/96 embedding) or IPv4-compatible
    return None


def _opened(ip: IPAddress, block: Block, allow_networks: Iterable[Network]) -> bool:
    """An allow entry opens a special block only from inside it (never a broader range, never opt_in: false)."""
    if not block.opt_in:
        return False
    return any(
        net.version == ip.version and ip in net and net.subnet_of(block.network)  # type: ignore[arg-type]
        for net in allow_networks
    )


def _judge(ip: IPAddress, allow_networks: list[Network], form: str) -> str | None:
    """Why `ip` is refused; `form` prefixes the reason for an address carried inside an IPv6 one."""
    if ip in metadata_addresses():
        return f"is a cloud metadata address (a credential service){' (' + form.rstrip(': ') + ')' if form else ''}"
    block = block_of(ip)
    if block is not None and not block.globally_reachable:
        if block.refuse:
            return f"is a {block.name} address ({block.rfc})"
        if not _opened(ip, block, allow_networks):
            return f"is not public ({form}{block.name}, {block.rfc})"
    if any(net.version == ip.version and ip in net for net in own_networks()) and not any(
        net.version == ip.version and ip in net and net.prefixlen > 0 for net in allow_networks
    ):  # an allow entry must name the host's address (or its network); 0.0.0.0/0 and ::/0 do not
        return f"is an address of this host ({form}a service bound to 0.0.0.0 answers on it as on loopback)"
    return None


def address_problem(ip: IPAddress, allow_networks: Iterable[Network] = ()) -> str | None:
    """Why connecting to `ip` is refused, or None if it is allowed (see the module docstring)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    allowed = list(allow_networks)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in metadata_addresses():
            return f"{ip} is a cloud metadata address (a credential service)"
        block = block_of(ip)
        if block is not None and block.refuse:
            return f"{ip} is a {block.name} address ({block.rfc}), refused"
        inner = embedded_ipv4(ip)
        if inner is not None:
            readings = _nat64_readings(ip) if ip in _LOCAL_NAT64 else [inner[0]]
            for v4 in readings:
                problem = _judge(v4, allowed, f"{inner[1]} form of {v4}: ")
                if problem:
                    return f"{ip} {problem}"
        # an ISATAP identifier is judged under every prefix, 6to4 and NAT64 included
        isatap = isatap_ipv4(ip)
        problem = _judge(isatap, allowed, f"ISATAP form of {isatap}: ") if isatap is not None else None
        if problem:
            return f"{ip} {problem}"
        if inner is not None:
            return None
    problem = _judge(ip, allowed, "")
    return f"{ip} {problem}" if problem else None
