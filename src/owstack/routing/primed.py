"""A stream whose first chunk has arrived, and the one place that settles its backend when it ends.

It stands apart from the caller (call.py) because the per-request context (pipeline/context.py) holds one
as a request's result while the caller imports that context: with the stream here, neither needs the other
to name it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from owstack.routing.slot import Slot
from owstack.types import JSON


class PrimedStream:
    """A stream whose first chunk has arrived; settle it exactly once when it ends."""

    __slots__ = ("_iter", "_settled", "first", "slot")

    def __init__(self, slot: Slot, iterator: AsyncIterator[JSON], first: JSON) -> None:
        self.slot = slot
        self._iter = iterator
        self.first = first
        self._settled = False

    async def chunks(self) -> AsyncIterator[JSON]:
        yield self.first
        async for chunk in self._iter:
            yield chunk

    async def aclose(self) -> None:
        aclose = getattr(self._iter, "aclose", None)
        if aclose is not None:
            await aclose()

    def settle(self, outcome: str) -> None:
        """`ok`, `failed` (the upstream broke mid-stream) or `abandoned` (the client went away)."""
        if self._settled:
            return
        self._settled = True
        self.slot.outstanding -= 1
        breaker = self.slot.breaker
        if outcome == "ok":
            breaker.success()
        elif outcome == "failed":
            breaker.failure()
        else:
            breaker.release()
