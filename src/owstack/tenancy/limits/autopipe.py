"""Calls of one Lua script from concurrent requests, sent to Redis together.

The first call starts a sender task; while its pipeline is in flight, new calls queue, and go together as
the next pipeline when it returns. At low load a call goes alone, one event-loop turn later; under load,
many calls share one round trip, and redis-py's per-command client work (connection checkout, packing,
parsing) shrinks to about a third (bench/limits_overhead.py). One pipeline is in flight per process at a
time, so a call waits at most for the one in flight and its own.

Each call gets its own reply or error: NOSCRIPT (the server lost its scripts) is retried for that call
with EVAL; a connection error or timeout fails every call of the pipeline with `LimiterUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError, RedisError

from owstack.tenancy.limits.bucket import LimiterUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

Call = tuple[tuple[str, ...], tuple[Any, ...], "asyncio.Future[Any]"]


class AutoPipeline:
    def __init__(self, client: Redis, script: Script, *, max_batch: int = 256) -> None:
        self.client = client
        self.script = script
        self.max_batch = max_batch
        self._queue: list[Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((keys, args, future))
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        batch: list[Call] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._send(batch)
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            for _, _, future in [*batch, *self._queue]:
                if not future.done():
                    future.set_exception(LimiterUnavailable("the limiter is closing"))
            self._queue = []
            raise
        finally:
            self._sender = None

    async def aclose(self) -> None:
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self, batch: list[Call]) -> None:
        sha, source = self.script.sha, self.script.source
        try:
            pipe = self.client.pipeline(transaction=False)
            for keys, args, _ in batch:
                pipe.evalsha(sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        except (TimeoutError, RedisError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(LimiterUnavailable(error))
            return
        for (keys, args, future), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                try:
                    result = await self.client.eval(source, len(keys), *keys, *args)
                except (TimeoutError, RedisError, OSError) as exc:
                    result = exc
            if future.done():  # its request went away meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(LimiterUnavailable(f"{type(result).__name__}: {result}"))
            else:
                future.set_result(result)


class Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) when the server does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: Any, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)
