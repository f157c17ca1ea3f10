"""What a pipeline stage is.

A stage is a small object with `before(ctx)` and `after(ctx)`. `before` runs in list order and may
short-circuit by raising an `OwstackError`; `after` runs in reverse order for every stage whose `before`
ran, once the response is complete: after the last byte of a whole response is ready, after the last
chunk of a stream (before its terminator is sent), after an error, and after a client disconnect. By
then `ctx.status`, `ctx.error`, `ctx.usage`, `ctx.finished_at` are final.
"""

from __future__ import annotations

from typing import Protocol

from owstack.pipeline.context import RequestContext


class Stage(Protocol):
    name: str

    async def before(self, ctx: RequestContext) -> None: ...

    async def after(self, ctx: RequestContext) -> None: ...


class BaseStage:
    """Convenience base: both hooks do nothing."""

    name = "stage"

    async def before(self, ctx: RequestContext) -> None:
        return None

    async def after(self, ctx: RequestContext) -> None:
        return None


class Service(Protocol):
    """A part with a lifetime: started (in order) before the gateway is ready, closed (in reverse) at shutdown.

    `unavailable()` says why the part cannot serve right now (None: it can); `/readyz` reports it, and a stage
    that is also a service refuses requests while it says so.
    """

    name: str

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    def unavailable(self) -> str | None: ...
