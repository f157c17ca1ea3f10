"""Running the stage list for one request: befores top to bottom, afters bottom to top, exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from owstack.errors import OwstackError
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import Stage

log = logging.getLogger("owstack.pipeline")


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def run(self, ctx: RequestContext) -> Run:
        return Run(self.stages, ctx)


class Run:
    """One request's pass. `before()` may raise an `OwstackError`; `finish()` must be awaited once the
    response is complete (it is idempotent), and returns the first error an `after` hook raised, if any."""

    __slots__ = ("_ran", "_stages", "ctx", "finished")

    def __init__(self, stages: tuple[Stage, ...], ctx: RequestContext) -> None:
        self._stages = stages
        self._ran: list[Stage] = []
        self.ctx = ctx
        self.finished = False

    async def before(self) -> None:
        ctx = self.ctx
        for stage in self._stages:
            self._ran.append(stage)
            await stage.before(ctx)

    def fail(self, error: OwstackError) -> None:
        self.ctx.error = error
        self.ctx.status = error.status

    async def finish(self) -> OwstackError | None:
        if self.finished:
            return None
        self.finished = True
        ctx = self.ctx
        if ctx.finished_at is None:
            ctx.finished_at = time.perf_counter()
        failure: OwstackError | None = None
        for stage in reversed(self._ran):
            try:
                await stage.after(ctx)
            except OwstackError as exc:
                failure = failure or exc
            except Exception:
                log.exception("after-hook of stage %s failed (request %s)", stage.name, ctx.request_id)
        return failure
