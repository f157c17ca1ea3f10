"""call: the backend, with retries and fallback before the first byte; settles breakers when done."""

from __future__ import annotations

from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.routing.call import Caller
from owstack.routing.primed import PrimedStream


class CallStage(BaseStage):
    name = "call"

    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    async def before(self, ctx: RequestContext) -> None:
        assert ctx.request is not None and ctx.route is not None
        ctx.result = await self.caller.call(ctx, ctx.route, ctx.request)

    async def after(self, ctx: RequestContext) -> None:
        if isinstance(ctx.result, PrimedStream):
            ctx.result.settle(ctx.stream_outcome or "abandoned")
