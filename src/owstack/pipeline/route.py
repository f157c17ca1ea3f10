"""route: the layer and the candidate backends, filtered by the tenant's jurisdictions (fail closed)."""

from __future__ import annotations

from owstack.config.load import Config
from owstack.errors import ModelNotFound
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.routing.router import Router


class RouteStage(BaseStage):
    name = "route"

    def __init__(self, config: Config, router: Router) -> None:
        self.backends = config.file.backends
        self.router = router
        # Open mode (no tenant) may still not reach proprietary backends; with none configured, skip the filter.
        self.any_proprietary = any(b.proprietary for b in self.backends.values())

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
            from owstack.tenancy.residency import filter_candidates, raise_if_empty

            kept, excluded = filter_candidates(names, self.backends, ctx.policy)
            ctx.residency_excluded = excluded
            raise_if_empty(kept, excluded, ctx.policy, route.layer, tenant_name=ctx.tenant, backends=self.backends)
            names = kept
        if ctx.request.endpoint != "chat":
            names = self._serving(names, ctx.request.endpoint, ctx.request.model)
        ctx.candidates = names

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
