"""The egress policy, the decision for one URL, and the errors a fetch raises.

httpx.TransportError
 └── EgressError
      ├── EgressBlocked         the URL (or a redirect hop) failed the policy; `.decision` says why
      └── EgressLimitExceeded   the response (received or decoded) was bigger than `max_bytes`, expanded
                                more than `max_ratio`, used a coding that cannot be bounded, or was
                                slower than `timeout_s`
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import httpx

from owstack.security.config import EgressSection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What owstack may fetch. `EgressPolicy()` is the secure default; `from_section` reads the config."""

    allow_schemes: tuple[str, ...] = ("http", "https")
    allow_hosts: tuple[str, ...] = ()
    deny_hosts: tuple[str, ...] = ()
    allow_networks: tuple[Network, ...] = ()
    max_redirects: int = 5
    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 30.0
    #: decoded body / bytes received, checked once the body passes 1 MiB (compression bombs)
    max_ratio: float = 100.0

    @classmethod
    def from_section(cls, section: EgressSection | None = None, **overrides: Any) -> EgressPolicy:
        """Build from the config's `security.egress` section (defaults when None); keyword overrides win."""
        s = section or EgressSection()
        values: dict[str, Any] = {
            "allow_schemes": tuple(s.allow_schemes),
            "allow_hosts": s.allow_hosts,
            "deny_hosts": s.deny_hosts,
            "allow_networks": tuple(ipaddress.ip_network(n, strict=False) for n in s.allow_networks),
            "max_redirects": s.max_redirects,
            "max_bytes": s.max_bytes,
            "timeout_s": s.timeout_s,
            "max_ratio": s.max_decompression_ratio,
        }
        values.update(overrides)
        if "allow_networks" in overrides:
            values["allow_networks"] = tuple(ipaddress.ip_network(n, strict=False) for n in overrides["allow_networks"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class EgressDecision:
    """The verdict for one URL: `addresses` are the resolved addresses that were checked (and, when
    allowed, the only ones a `SafeTransport` connection may use)."""

    url: str
    allowed: bool
    reason: str
    addresses: tuple[str, ...] = ()
    host: str | None = None
    port: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "allowed": self.allowed,
            "reason": self.reason,
            "addresses": list(self.addresses),
        }


class EgressError(httpx.TransportError):
    """Base of the egress errors; an httpx transport error, so clients handle it like a failed fetch."""


class EgressBlocked(EgressError):
    def __init__(self, decision: EgressDecision, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"egress blocked: {decision.url}: {decision.reason}", request=request)
        self.decision = decision


class EgressLimitExceeded(EgressError):
    pass


__all__ = ["EgressBlocked", "EgressDecision", "EgressError", "EgressLimitExceeded", "EgressPolicy"]
