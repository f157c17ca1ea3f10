"""SSRF-safe egress: decide whether a URL may be fetched, and fetch it only from the checked address.

    policy = EgressPolicy.from_section(config.file.security.egress)
    decision = await check_url("http://169.254.169.254/latest/meta-data/", policy)   # blocked, with reason
    async with safe_client(policy) as client:                                         # every hop checked
        r = await client.get("https://api.example.com/data")

`SafeTransport(policy, resolver=None)` is the `httpx.AsyncBaseTransport` behind `safe_client`;
`SafeSyncTransport`/`safe_sync_client`/`check_url_sync` are the synchronous twins. On a redirect to another
origin the clients drop credential-like headers, not only `Authorization` (`clients`).
"""

from __future__ import annotations

from owstack.security.egress.addresses import address_problem, name_problem
from owstack.security.egress.check import check_url, check_url_sync, host_matches
from owstack.security.egress.clients import safe_client, safe_sync_client
from owstack.security.egress.policy import (
    EgressBlocked,
    EgressDecision,
    EgressError,
    EgressLimitExceeded,
    EgressPolicy,
)
from owstack.security.egress.resolve import ResolveError, Resolver, StaticResolver, SystemResolver
from owstack.security.egress.transport import (
    PinnedBackend,
    PinnedSyncBackend,
    SafeSyncTransport,
    SafeTransport,
)

__all__ = [
    "EgressBlocked",
    "EgressDecision",
    "EgressError",
    "EgressLimitExceeded",
    "EgressPolicy",
    "PinnedBackend",
    "PinnedSyncBackend",
    "ResolveError",
    "Resolver",
    "SafeSyncTransport",
    "SafeTransport",
    "StaticResolver",
    "SystemResolver",
    "address_problem",
    "check_url",
    "check_url_sync",
    "host_matches",
    "name_problem",
    "safe_client",
    "safe_sync_client",
]
