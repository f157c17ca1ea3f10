"""Listening addresses compared without DNS: is a host the loopback, and do two names reach the same
listener on this machine? Used to refuse a backend that points at the gateway itself (config/validate.py)
and to keep `owstack recipe` ports off the gateway's (catalog/recipes.py), and to tell whether the gateway
listens on loopback only (tenancy/openmode.py). It reads no configuration, so it stands beside errors.py and
types.py, below the packages that use it."""

from __future__ import annotations

import ipaddress
import socket

#: addresses that mean "every interface of this machine"
ANY_ADDRESS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped, `::ffff:127.0.0.1`) and `localhost`; never resolves."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def same_host(target: str, listener: str) -> bool:
    """Whether connecting to `target` reaches a server listening on `listener` on this machine.

    Exact names match; loopback names and this machine's host name reach a loopback or all-interfaces
    listener. Other names are not resolved (no DNS at start): they count as other machines."""
    a, b = target.strip().strip("[]").lower(), listener.strip().strip("[]").lower()
    if a == b:
        return True
    here = {socket.gethostname().lower()}
    local = is_loopback(a) or a in here
    if b in ANY_ADDRESS:
        return local
    return local and (is_loopback(b) or b in here)
