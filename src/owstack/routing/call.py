"""Calling backends: retries and fallback while no byte has reached the client.

Order of attempts: the layer's replicas (each time the least-loaded one not yet tried), then its fallback
list in order; at most `routing.max_attempts` in all. A retryable failure (connect error, 5xx, 429,
timeout, queue full) counts against the backend's breaker and moves on; a non-retryable one (the upstream
rejected the request itself, a 400) is the client's to fix and returns at once. A stream is "committed" once
its first chunk has arrived: from then on a failure ends the stream with an error event (see the API edge).
"""

from __future__ import annotations

import time
from typing import Any

from owstack.errors import NoHealthyBackend, OwstackError, UpstreamError
from owstack.pipeline.context import Attempt, RequestContext
from owstack.routing.primed import PrimedStream
from owstack.routing.router import Route, Router
from owstack.routing.slot import Slot
from owstack.types import ChatRequest, Completion


class Caller:
    def __init__(self, router: Router, max_attempts: int) -> None:
        self.router = router
        self.max_attempts = max_attempts

    async def call(self, ctx: RequestContext, route: Route, request: ChatRequest) -> Completion | PrimedStream:
        tried: set[str] = set()
        last_error: OwstackError | None = None
        # Only the candidates the route stage left (residency has removed the others, fail closed).
        allowed = set(ctx.candidates)
        replicas = [n for n in route.replicas if n in allowed]
        fallback = [n for n in route.fallback if n in allowed and n not in route.replicas]
        while len(tried) < self.max_attempts:
            slot = self._next(replicas, fallback, tried, request, route.layer)
            if slot is None:
                break
            tried.add(slot.name)
            ctx.backend, ctx.engine, ctx.model = slot.name, slot.backend.engine, slot.backend.model
            if request.adapter is not None:  # metering and audit record the adapter with the model
                ctx.model = f"{slot.backend.model}:{request.adapter}"
            result, error = await self._attempt(ctx, slot, request)
            if result is not None:
                return result
            assert error is not None
            if not error.retryable:
                raise error
            last_error = error
        if last_error is not None:
            if len(ctx.attempts) > 1:
                last_error.message = f"{last_error.message} (after {len(ctx.attempts)} attempts)"
            raise last_error
        names = [*replicas, *fallback]
        reasons = self.router.unavailable_reasons(names) or names
        raise NoHealthyBackend(f"no healthy backend for layer {route.layer}: {', '.join(reasons)}")

    async def _attempt(
        self, ctx: RequestContext, slot: Slot, request: ChatRequest
    ) -> tuple[Completion | PrimedStream | None, OwstackError | None]:
        """One try. Whatever happens (a result, a typed error, any other exception, a cancellation), the
        slot's outstanding count and breaker are settled here - except for a stream handed on, which its
        `PrimedStream.settle` settles when it ends."""
        started = time.perf_counter()
        slot.outstanding += 1
        outcome = "release"  # cancelled, or an unexpected exception: neither the backend's fault nor success
        try:
            result = await self._call(slot, request)
            ctx.attempts.append(Attempt(slot.name, "ok", time.perf_counter() - started))
            if isinstance(result, PrimedStream):
                outcome = "handed-on"
                return result, None
            outcome = "success"
            return result, None
        except OwstackError as exc:
            ctx.attempts.append(Attempt(slot.name, exc.code or exc.type, time.perf_counter() - started))
            # a non-retryable error is the upstream judging the request itself: the backend answered
            outcome = "failure" if exc.retryable else "success"
            return None, exc
        finally:
            if outcome != "handed-on":
                slot.outstanding -= 1
                if outcome == "success":
                    slot.breaker.success()
                elif outcome == "failure":
                    slot.breaker.failure()
                else:
                    slot.breaker.release()

    def _next(
        self, replicas: list[str], fallback: list[str], tried: set[str], request: ChatRequest, layer: str
    ) -> Slot | None:
        slot = self.router.pick(replicas, tried, request, layer)
        if slot is not None and slot.breaker.acquire():
            return slot
        for name in fallback:
            if name in tried:
                continue
            candidate = self.router.slots[name]
            if candidate.breaker.acquire():
                return candidate
        return None

    async def _call(self, slot: Slot, request: ChatRequest) -> Completion | PrimedStream:
        backend = slot.backend
        if not request.stream:
            return await backend.complete(request)
        iterator: Any = backend.stream(request)
        try:
            first = await iterator.__anext__()
        except StopAsyncIteration:
            raise UpstreamError(f"backend {slot.name} ended the stream before sending anything") from None
        except BaseException:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        return PrimedStream(slot, iterator, first)
