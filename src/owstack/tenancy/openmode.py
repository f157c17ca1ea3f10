"""May the gateway run without API keys? Only the embedded, single-user case: no tenants, loopback only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owstack.address import is_loopback

if TYPE_CHECKING:
    from owstack.config.load import Config


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
