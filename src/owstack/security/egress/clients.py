"""httpx clients wired with the egress transports: redirects re-checked hop by hop, no proxies from the
environment, and credentials kept to the origin they were meant for.

httpx drops `Authorization` (and `Cookie`) when a redirect leaves the origin, but sends every other header
on: an API key in `X-Api-Key`, `Api-Key`, `X-Auth-Token`, `Private-Token` or `Proxy-Authorization` would
reach whatever host a redirect names. These clients also drop, on a hop to another origin (scheme, host or
port; the plain http -> https upgrade of the same host excepted, as httpx does), every header whose name
looks like a credential (`CREDENTIAL_HEADER`).
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from owstack.security.egress.policy import EgressPolicy
from owstack.security.egress.resolve import Resolver
from owstack.security.egress.transport import SafeSyncTransport, SafeTransport

#: header names dropped on a redirect to another origin
CREDENTIAL_HEADER = re.compile(r"auth|token|secret|key|cookie|session|credential|passw|signature", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _upgrade(old: httpx.URL, new: httpx.URL) -> bool:
    """http://host(:80) -> https://host(:443): the one cross-origin hop that keeps credentials."""
    return old.host == new.host and _origin(old)[::2] == ("http", 80) and _origin(new)[::2] == ("https", 443)


def strip_credentials(headers: httpx.Headers, old: httpx.URL, new: httpx.URL) -> httpx.Headers:
    """`headers` for a redirect from `old` to `new`: credential-like headers dropped if the origin changes."""
    if _origin(old) == _origin(new) or _upgrade(old, new):
        return headers
    for name in [n for n in headers if CREDENTIAL_HEADER.search(n)]:
        del headers[name]
    return headers


class _AsyncClient(httpx.AsyncClient):
    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> httpx.Headers:
        return strip_credentials(super()._redirect_headers(request, url, method), request.url, url)


class _Client(httpx.Client):
    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> httpx.Headers:
        return strip_credentials(super()._redirect_headers(request, url, method), request.url, url)


def safe_client(
    policy: EgressPolicy | None = None, resolver: Resolver | None = None, **kwargs: Any
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose every request and redirect hop goes through `SafeTransport`.

    Redirects are followed up to `policy.max_redirects`; proxies from the environment are ignored
    (a proxy would make the checked address meaningless). Extra keyword arguments go to the transport.
    """
    policy = policy or EgressPolicy()
    return _AsyncClient(transport=SafeTransport(policy, resolver, **kwargs), **_options(policy))


def safe_sync_client(
    policy: EgressPolicy | None = None, resolver: Resolver | None = None, **kwargs: Any
) -> httpx.Client:
    """The synchronous twin of `safe_client`."""
    policy = policy or EgressPolicy()
    return _Client(transport=SafeSyncTransport(policy, resolver, **kwargs), **_options(policy))


def _options(policy: EgressPolicy) -> dict[str, Any]:
    """What both clients share: redirects followed (each hop checked by the transport), no proxies from the
    environment (a proxy would make the checked address meaningless), the policy's total timeout."""
    return {
        "follow_redirects": True,
        "max_redirects": policy.max_redirects,
        "timeout": policy.timeout_s,
        "trust_env": False,
    }
