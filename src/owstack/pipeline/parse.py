"""parse: the request body -> one validated internal `ChatRequest`, by the request's wire protocol."""

from __future__ import annotations

from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage


class ParseStage(BaseStage):
    name = "parse"

    async def before(self, ctx: RequestContext) -> None:
        if ctx.read_body is not None:
            ctx.body = await ctx.read_body()
        assert ctx.wire is not None
        ctx.request = await ctx.wire.parse(ctx.body, ctx)
