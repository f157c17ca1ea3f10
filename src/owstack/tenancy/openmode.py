"""May the gateway run without API keys? Only the embedded, single-user case: no tenants, loopback only."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from owstack.config import Config


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


def open_mode_allowed(config: Config, host: str) -> tuple[bool, str]:
    """(True, the warning to print at start) when `/v1` may run without keys; else (False, why not).

    Open mode needs both: no `tenants:` in the config, and a listening address on the loopback interface.
    With tenants, keys are always required. With no tenants on a non-loopback address, the gateway must not
    start: it would either serve anyone or accept no key at all.
    """
    tenants = sorted(config.file.tenants)
    if tenants:
        shown = ", ".join(tenants[:5]) + (", ..." if len(tenants) > 5 else "")
        return False, f"API keys required on /v1 ({len(tenants)} tenant(s) configured: {shown})"
    if is_loopback(host):
        return True, (
            f"running OPEN: no tenants are configured and the gateway listens only on {host}, so /v1 accepts "
            "requests without an API key. Define tenants and create keys (owstack keys create) before "
            "exposing it."
        )
    return False, (
        f"refusing to serve {host} without API keys: no tenants are configured. Define a tenant under "
        "`tenants:` and create a key with `owstack keys create --tenant NAME`, or listen on 127.0.0.1."
    )
