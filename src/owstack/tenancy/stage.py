"""Pipeline stage 1, authenticate: API key -> tenant and its policy.

The key comes from `Authorization: Bearer <key>` (OpenAI clients) or `x-api-key: <key>` (Anthropic
clients); when both are sent they must agree. On success the stage sets `ctx.tenant`, `ctx.key_id`,
`ctx.policy` (the tenant's `TenantSection`) and `ctx.allowed_layers` (the key's layers intersected with
the tenant's; None: every layer). Any failure is a 401 `AuthenticationFailed`.

The layer is known only after routing: the route stage calls `check_layer(ctx, layer)`, a 403
`PermissionDenied` (code `layer_not_allowed`) when the key or tenant may not use it.

In open mode (see `owstack.tenancy.open_mode_allowed`) this stage is not installed at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from owstack.errors import AuthenticationFailed, PermissionDenied
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.tenancy.keys import KeyStore

MISSING = "missing API key: send `Authorization: Bearer <key>` (OpenAI clients) or `x-api-key: <key>` (Anthropic)"


def presented_key(headers: dict[str, str]) -> str:
    """The key from lower-cased request headers; `AuthenticationFailed` if absent or ambiguous."""
    bearer: str | None = None
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("the Authorization header must read `Bearer <key>`")
        bearer = value.strip()
    api_key = headers.get("x-api-key")
    api_key = api_key.strip() if api_key is not None else None
    if bearer is not None and api_key and api_key != bearer:
        raise AuthenticationFailed("the Authorization and x-api-key headers carry different keys; send one")
    key = bearer or api_key
    if not key:
        raise AuthenticationFailed(MISSING)
    return key


class AuthenticateStage(BaseStage):
    name = "authenticate"

    def __init__(self, config: Config, keystore: KeyStore) -> None:
        self.config = config
        self.keystore = keystore
        self._watch: asyncio.Task[None] | None = None

    # a service too: it reads the key table's revision every `keys.revision_check_s`, requests or not
    async def start(self) -> None:
        self._watch = asyncio.create_task(self.keystore.watch(), name="owstack-keys-revision")

    async def aclose(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await self.keystore.aclose()

    def unavailable(self) -> str | None:
        """Keys never make the gateway unready: a store that cannot answer is handled per request."""
        return None

    async def before(self, ctx: RequestContext) -> None:
        record = await self.keystore.authenticate_async(presented_key(ctx.headers))
        ctx.key_id = record.key_id
        tenant = self.config.file.tenants.get(record.tenant)
        if tenant is None:
            raise AuthenticationFailed(
                f"API key {record.key_id} belongs to tenant {record.tenant!r}, which is not in the gateway's "
                "configuration (removed or renamed); ask an operator for a key of a configured tenant"
            )
        ctx.tenant = record.tenant
        ctx.policy = tenant
        ctx.allowed_layers = _intersect(record.layers, tenant.layers)


def _intersect(key_layers: frozenset[str] | None, tenant_layers: tuple[str, ...] | None) -> frozenset[str] | None:
    if key_layers is None:
        return None if tenant_layers is None else frozenset(tenant_layers)
    if tenant_layers is None:
        return key_layers
    return key_layers & frozenset(tenant_layers)


def check_layer(ctx: RequestContext, layer: str) -> None:
    """403 `layer_not_allowed` when the request's key (or its tenant) may not use `layer`."""
    if ctx.allowed_layers is None or layer in ctx.allowed_layers:
        return
    allowed = ", ".join(sorted(ctx.allowed_layers)) or "none"
    raise PermissionDenied(
        f"API key {ctx.key_id} (tenant {ctx.tenant!r}) may not use layer {layer!r}; it may use: {allowed}",
        code="layer_not_allowed",
    )
