"""A strict URL reader for egress checks: one reading of the host, the one a client library would use.

SSRF filters are bypassed where the filter and the HTTP client read a URL differently. This reader refuses
everything that clients disagree on, and reads IPv4 hosts the way `inet_aton` (which `getaddrinfo` uses)
and the WHATWG URL standard do:

- userinfo (`http://good.com@127.0.0.1/`) is refused outright;
- whitespace, control characters and percent-encoded hosts are refused, and so is a backslash before the
  end of the authority (WHATWG reads `http://a.example\\@127.0.0.1/` as host a.example, RFC 3986 readers
  as 127.0.0.1); one in the path, query or fragment (a Windows path in a query string) is data to both;
- the authority ends at the first `/`, `?` or `#` (`http://127.0.0.1#@evil.com/` is 127.0.0.1);
- a host whose last label is a number is an IPv4 address: decimal (`2130706433`), octal (`0177.0.0.1`),
  hex (`0x7f.1`) and shortened (`127.1`) forms are read as 127.0.0.1; if it does not parse, it is refused;
- a dotted part with a leading zero is octal to inet_aton but decimal to Python's `ipaddress` before
  3.9.5 (CVE-2021-29921), Go before 1.17 (CVE-2021-29923) and Java: `0127.0.0.1` is 87.0.0.1 to one
  and 127.0.0.1 to the other. The decimal reading is kept as `Target.also` and judged too;
- IPv6 literals in brackets, without zone ids; international names go through IDNA (UTS #46), so
  full-width digits and dots fold to ASCII before the checks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

MAX_URL_CHARS = 8192
DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31}):")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_IPV4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class URLRejected(ValueError):
    """The URL cannot be read safely; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    #: the host as an HTTP client sends it (lower case, IDNA-encoded, brackets removed)
    host: str
    #: the address when the host is an IP literal in any spelling, else None
    ip: IPAddress | None
    port: int
    #: other addresses other clients read the same host as (leading zeros as decimal); judged, never connected to
    also: tuple[IPAddress, ...] = ()


def parse(url: str) -> Target:
    """Read `url` or raise `URLRejected` with the reason."""
    if len(url) > MAX_URL_CHARS:
        raise URLRejected(f"URL longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise URLRejected("URL contains whitespace or control characters")
    backslash = URLRejected("URL has a backslash before its path (clients disagree on what it means)")
    m = _SCHEME.match(url)
    if not m:
        raise backslash if "\\" in url else URLRejected("URL has no scheme (expected e.g. https://)")
    scheme = m.group(1).lower()
    rest = url[m.end() :]
    if not rest.startswith("//"):
        raise backslash if "\\" in rest else URLRejected("URL has no '//' authority after the scheme")
    rest = rest[2:]
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority = rest[:end]
    if "\\" in authority:
        raise backslash
    if "@" in authority:
        raise URLRejected("URL has userinfo (user@host); credentials in URLs are refused")
    host_part, port = _split_port(authority, scheme)
    host, ip = _read_host(host_part)
    also = decimal_reading(host) if isinstance(ip, ipaddress.IPv4Address) else None
    return Target(scheme=scheme, host=host, ip=ip, port=port, also=(also,) if also not in (None, ip) else ())


def _split_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise URLRejected("unclosed '[' in IPv6 host")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise URLRejected("unexpected text after the IPv6 host")
        port_text = after[1:] if after else ""
    else:
        if authority.count(":") > 1:
            raise URLRejected("host has more than one ':' (IPv6 literals need brackets)")
        host, _, port_text = authority.partition(":")
    if not port_text:
        return host, DEFAULT_PORTS.get(scheme, 0)  # 0: unknown scheme, refused by the scheme check
    if not port_text.isdigit() or not port_text.isascii() or not 0 < int(port_text) < 65536:
        raise URLRejected(f"port {port_text!r} is not a number between 1 and 65535")
    return host, int(port_text)


def _read_host(host: str) -> tuple[str, IPAddress | None]:
    if not host:
        raise URLRejected("URL has an empty host")
    if "%" in host:
        raise URLRejected("host is percent-encoded or has an IPv6 zone id")
    if host.startswith("["):
        try:
            ip6 = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise URLRejected(f"{host} is not a valid IPv6 address") from None
        return str(ip6), ip6
    host = host.lower()
    if not host.isascii():
        host = _idna(host)
    ip4 = read_ipv4(host)
    if ip4 is not None:
        return host, ip4
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise URLRejected(f"host {host!r} is not a valid host name")
    return host, None


def _idna(host: str) -> str:
    """IDNA-encode a non-ASCII host. Hosts that Unicode mapping would change (full-width letters or
    digits, invisible characters) are refused: clients disagree on whether to map them."""
    try:
        mapped = idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise URLRejected(f"host is not a valid international domain name ({exc})") from None
    try:
        strict = idna.encode(host).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        strict = None
    if strict != mapped:
        raise URLRejected(f"host changes under Unicode mapping (to {mapped!r}): full-width or invisible characters")
    return mapped


def read_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read `host` as an IPv4 address the way inet_aton and browsers do, or return None if it is a name.

    A host whose last label is numeric (decimal, or 0x-hex) must be an address; if it is not a valid one,
    `URLRejected` is raised (WHATWG "ends in a number"), since a resolver might still read it as one.
    """
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not _IPV4_PART.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_IPV4_PART.match(p) for p in parts):
        raise URLRejected(f"host {host!r} ends in a number but is not a valid IPv4 address")
    numbers = [_ipv4_number(p) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise URLRejected(f"host {host!r} is an IPv4 address out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def decimal_reading(host: str) -> ipaddress.IPv4Address | None:
    """`host` (an IPv4 literal to `read_ipv4`) with its leading-zero parts read as decimal, or None when
    none has one or that reading is not an address."""
    parts = host.rstrip(".").split(".")
    if not any(len(p) > 1 and p.startswith("0") and p.isdigit() for p in parts):
        return None
    try:
        return read_ipv4(".".join(str(int(p)) if p.isdigit() else p for p in parts))
    except URLRejected:
        return None


def _ipv4_number(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        if not set(part) <= set("01234567"):
            raise URLRejected(f"{part!r} is not a valid octal number in an IPv4 address")
        return int(part, 8)
    return int(part)
