"""route: the layer and the candidate backends, filtered by the tenant's jurisdictions (fail closed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owstack.config.load import Config
from owstack.errors import ModelNotFound
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.routing.router import Router

if TYPE_CHECKING:
    from owstack.tenancy.config import TenantSection

#: residency decisions kept per stage (emptied when full)
RESIDENCY_CACHE = 1024


class RouteStage(BaseStage):
    name = "route"

    def __init__(self, config: Config, router: Router) -> None:
        self.backends = config.file.backends
        self.router = router
        # Open mode (no tenant) may still not reach proprietary backends; with none configured, skip the filter.
        self.any_proprietary = any(b.proprietary for b in self.backends.values())
        #: (candidates, tenant policy's id) -> (that policy, kept, excluded): a few combinations per gateway,
        #: decided once each rather than per request (the backends and policies are the configuration's)
        self._residency: dict[tuple[tuple[str, ...], int], tuple[TenantSection | None, list[str], list[str]]] = {}

    async def before(self, ctx: RequestContext) -> None:
        assert ctx.request is not None
        route = self.router.resolve(ctx.request)
        ctx.route = route
        ctx.request.adapter = route.adapter  # `edge:<adapter>`: each backend serves it its own way
        ctx.layer = route.layer
        ctx.route_reason = route.reason
        names = list(dict.fromkeys((*route.replicas, *route.fallback)))
        if ctx.allowed_layers is not None:
            from owstack.tenancy.stage import check_layer

            check_layer(ctx, route.layer)
        if ctx.policy is not None or self.any_proprietary:
            kept, excluded = self._resident(names, ctx.policy)
            ctx.residency_excluded = list(excluded)
            if not kept:
                from owstack.tenancy.residency import raise_if_empty

                raise_if_empty(kept, excluded, ctx.policy, route.layer, tenant_name=ctx.tenant, backends=self.backends)
            names = list(kept)
        if ctx.request.endpoint != "chat":
            names = self._serving(names, ctx.request.endpoint, ctx.request.model)
        ctx.candidates = names

    def _resident(self, names: list[str], policy: TenantSection | None) -> tuple[list[str], list[str]]:
        """`residency.filter_candidates`, remembered per (candidates, policy) (shared lists: copy before
        changing them)."""
        key = (tuple(names), id(policy))
        hit = self._residency.get(key)
        if hit is None or hit[0] is not policy:
            from owstack.tenancy.residency import filter_candidates

            if len(self._residency) >= RESIDENCY_CACHE:
                self._residency.clear()
            hit = self._residency[key] = (policy, *filter_candidates(names, self.backends, policy))
        return hit[1], hit[2]

    def _serving(self, names: list[str], endpoint: str, model: str) -> list[str]:
        serving = [n for n in names if endpoint in self.backends[n].serves]
        if not serving:
            known = sorted({n for n, b in self.backends.items() if endpoint in b.serves})
            hint = (
                f"; backends that do: {', '.join(known)}" if known else "; declare one with `endpoints:` in its config"
            )
            raise ModelNotFound(
                f"no configured backend serves /v1/{endpoint} for model `{model}`{hint}",
                param="model",
                code="endpoint_not_supported",
            )
        return serving
