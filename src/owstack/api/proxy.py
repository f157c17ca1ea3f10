"""The PROXY protocol (HAProxy's spec, versions 1 and 2): the header a load balancer or proxy sends first on a
connection it opens to the gateway, naming the client it is relaying.

    parse(buf)          (bytes it took, the client's (address, port) or None: the peer's own) once `buf` holds
                        a whole header; None while more is needed; raises BadHeader for anything else
    looks_like(data)    whether a connection's first bytes are a PROXY header (refused from untrusted peers)
    Trusted(entries)    `server.trusted_proxies`: addresses and CIDR networks, matched against a peer address

`PROXY UNKNOWN` (v1) and LOCAL (v2), a proxy's own connections such as its health checks, name no client: the
peer is the client. So do v2 headers for families other than TCP/UDP over IPv4/IPv6 (the spec says to accept
them and use the connection's own addresses). Source: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

#: the 12 bytes that begin a v2 header (section 2.2)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
#: a v1 header's longest line, CRLF included (section 2.1)
V1_MAX = 107


class BadHeader(Exception):
    """The bytes are not a valid PROXY header (or the connection sent none)."""


def looks_like(data: bytes) -> bool:
    return data.startswith(b"PROXY") or (len(data) >= 5 and V2_SIGNATURE.startswith(data[:12]))


def parse(buf: bytes | bytearray) -> tuple[int, tuple[str, int] | None] | None:
    if not buf:
        return None
    if buf[0] == 0x50:  # "P"
        return _v1(buf)
    if buf[0] == 0x0D:  # "\r"
        return _v2(buf)
    raise BadHeader("the connection did not begin with a PROXY protocol header")


def _v1(buf: bytes | bytearray) -> tuple[int, tuple[str, int] | None] | None:
    head = bytes(buf[: len(_V1_PREFIX)])
    if not _V1_PREFIX.startswith(head):
        raise BadHeader("the connection did not begin with a PROXY protocol header")
    end = buf.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buf) >= V1_MAX:
            raise BadHeader(f"a PROXY v1 header longer than {V1_MAX} bytes")
        return None
    try:
        fields = bytes(buf[len(_V1_PREFIX) : end]).decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise BadHeader("a PROXY v1 header that is not ASCII") from None
    if fields[0] == "UNKNOWN":
        return end + 2, None
    if len(fields) != 5 or fields[0] not in ("TCP4", "TCP6"):
        raise BadHeader("a PROXY v1 header must be `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN`")
    family, source, _dest, sport, dport = fields
    try:
        address = ip_address(source)
    except ValueError:
        raise BadHeader(f"a PROXY v1 header with a source that is not an address: {source[:45]!r}") from None
    if address.version != (4 if family == "TCP4" else 6) or "/" in source or "%" in source:
        raise BadHeader(f"a PROXY v1 header's {family} source is not an IPv{family[3]} address")
    _port(dport)
    return end + 2, (str(address), _port(sport))


def _port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
        raise BadHeader(f"a PROXY v1 header with a port that is not one: {text[:8]!r}")
    return int(text)


def _v2(buf: bytes | bytearray) -> tuple[int, tuple[str, int] | None] | None:
    if not V2_SIGNATURE.startswith(bytes(buf[:12])):
        raise BadHeader("the connection did not begin with a PROXY protocol header")
    if len(buf) < 16:
        return None
    version, command = buf[12] >> 4, buf[12] & 0x0F
    if version != 2:
        raise BadHeader(f"a PROXY v2 signature with version {version}")
    if command > 1:
        raise BadHeader(f"a PROXY v2 header with the unknown command {command}")
    total = 16 + int.from_bytes(buf[14:16], "big")
    if len(buf) < total:
        return None
    if command == 0:  # LOCAL: the proxy's own connection
        return total, None
    family = buf[13] >> 4
    body = bytes(buf[16:total])
    if family == 1:  # AF_INET: source, destination (4 bytes each), source port, destination port
        if len(body) < 12:
            raise BadHeader("a PROXY v2 IPv4 header shorter than its addresses")
        return total, (str(IPv4Address(body[0:4])), int.from_bytes(body[8:10], "big"))
    if family == 2:  # AF_INET6: 16 bytes each
        if len(body) < 36:
            raise BadHeader("a PROXY v2 IPv6 header shorter than its addresses")
        address = IPv6Address(body[0:16])
        mapped = address.ipv4_mapped
        return total, (str(mapped if mapped is not None else address), int.from_bytes(body[32:34], "big"))
    if family > 3:
        raise BadHeader(f"a PROXY v2 header with the unknown address family {family}")
    return total, None  # AF_UNSPEC or AF_UNIX: the connection's own addresses


class Trusted:
    """Addresses and networks; `in` takes an address as text (an IPv4-mapped IPv6 one matches its IPv4)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = tuple(ip_network(e, strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        if not self.networks or not isinstance(host, str):
            return False
        try:
            address = ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks)

    def as_uvicorn(self) -> list[str]:
        """For uvicorn's `forwarded_allow_ips`, which reads a CIDR strictly (host bits set: not a network)."""
        return [str(net) for net in self.networks]
