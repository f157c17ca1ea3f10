"""shape: resolve the reasoning policy (request field > header > tenant > layer). Each backend applies it
in its own engine's dialect at call time, because a fallback may change the engine."""

from __future__ import annotations

from owstack.efficiency.config import ReasoningSection
from owstack.efficiency.policies import HEADER, resolve
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage


class ShapeStage(BaseStage):
    name = "shape"

    def __init__(self, section: ReasoningSection) -> None:
        self.section = section

    async def before(self, ctx: RequestContext) -> None:
        assert ctx.request is not None
        tenant_value = getattr(ctx.policy, "reasoning", None) if ctx.policy is not None else None
        layer_value = self.section.for_layer(ctx.layer)
        header_value = ctx.headers.get(HEADER)
        if ctx.reasoning_request is None and header_value is None and tenant_value is None and layer_value is None:
            return
        policy = resolve(
            ctx.reasoning_request,
            header_value,
            tenant_value,
            layer_value,
            concise_version=self.section.concise_version,
        )
        ctx.request.reasoning = policy
        ctx.reasoning_policy = None if policy is None else str(policy)
