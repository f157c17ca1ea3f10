"""The `mcp` SDK's HTTP client (httpx2) sent through owstack's SSRF-safe egress transport (httpx).

The SDK's Streamable HTTP and SSE clients take an `httpx2.AsyncClient`; owstack's egress policy is an
`httpx` transport (`owstack.security.egress.SafeTransport`: every request and redirect checked, the
connection pinned to the checked addresses, responses capped). `EgressTransport` adapts one to the other,
so every byte to an HTTP upstream goes through the same policy as any other fetch owstack makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2

from owstack.security.egress import EgressBlocked, EgressLimitExceeded, EgressPolicy, Resolver, SafeTransport


class _Body(httpx2.AsyncByteStream):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except EgressLimitExceeded as exc:
            if "took longer" in str(exc):  # the egress deadline: a long SSE stream ends, the SDK reconnects
                return
            raise httpx2.ReadError(str(exc)) from None
        except httpx.TimeoutException as exc:
            raise httpx2.ReadTimeout(str(exc)) from None
        except httpx.TransportError as exc:
            raise httpx2.ReadError(str(exc)) from None

    async def aclose(self) -> None:
        await self._response.aclose()


class EgressTransport(httpx2.AsyncBaseTransport):
    """An httpx2 transport whose requests are made by `SafeTransport` under `policy`."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver | None = None, **kwargs: Any) -> None:
        self.inner = SafeTransport(policy, resolver, **kwargs)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        outgoing = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.raw),
            content=body,
            extensions={"timeout": request.extensions.get("timeout", {})},
        )
        try:
            response = await self.inner.handle_async_request(outgoing)
        except EgressBlocked as exc:
            raise httpx2.ConnectError(str(exc), request=request) from None
        except httpx.TimeoutException as exc:
            raise httpx2.ConnectTimeout(str(exc), request=request) from None
        except httpx.TransportError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from None
        return httpx2.Response(
            response.status_code,
            headers=list(response.headers.raw),
            stream=_Body(response),
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def egress_client(
    policy: EgressPolicy, resolver: Resolver | None = None, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx2.AsyncClient:
    """An httpx2 client for the SDK's HTTP transports: egress-checked, no proxies from the environment."""
    return httpx2.AsyncClient(
        transport=EgressTransport(policy, resolver, **kwargs),
        headers=headers,
        timeout=httpx2.Timeout(policy.timeout_s, read=max(policy.timeout_s, 300.0)),
        trust_env=False,
    )
