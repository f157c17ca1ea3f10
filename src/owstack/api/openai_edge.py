"""The OpenAI chat-completions edge: the internal types are OpenAI's already, so this edge mostly adds the
owstack marker, filters the usage chunk the client did not ask for, and writes SSE."""

from __future__ import annotations

import time

import orjson

from owstack.api.handler import marker
from owstack.backends.sse import DONE_EVENT
from owstack.errors import OwstackError
from owstack.pipeline.context import RequestContext
from owstack.types import JSON, Completion


def _event(obj: JSON) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class OpenAIEdge:
    protocol = "openai"

    def error(self, error: OwstackError) -> tuple[int, bytes]:
        return error.status, orjson.dumps(error.body())

    def completion(self, ctx: RequestContext, result: Completion) -> bytes:
        body = result.body
        if "usage" not in body or not body["usage"]:
            body["usage"] = ctx.usage.to_openai()
        body["owstack"] = marker(ctx)
        return orjson.dumps(body)

    def encoder(self, ctx: RequestContext) -> OpenAIStream:
        assert ctx.request is not None
        return OpenAIStream(ctx, ctx.request.include_usage)


class OpenAIStream:
    __slots__ = ("_ctx", "_first", "wants_usage")

    def __init__(self, ctx: RequestContext, include_usage: bool) -> None:
        self._ctx = ctx
        self._first: JSON | None = None
        self.wants_usage = include_usage

    def chunk(self, chunk: JSON) -> bytes:
        if self._first is None:
            self._first = chunk
            chunk = {**chunk, "owstack": marker(self._ctx)}
        if "usage" in chunk and not self.wants_usage:
            # owstack always asks upstreams for usage (the meter needs it); the client did not
            if not chunk.get("choices"):
                return b""
            chunk = {k: v for k, v in chunk.items() if k != "usage"}
        return _event(chunk)

    def end(self, ctx: RequestContext) -> bytes:
        if not self.wants_usage or ctx.usage.reported:
            return b""
        first = self._first or {}
        return _event(
            {
                "id": first.get("id", f"chatcmpl-{ctx.request_id}"),
                "object": "chat.completion.chunk",
                "created": first.get("created", int(time.time())),
                "model": ctx.model,
                "choices": [],
                "usage": ctx.usage.to_openai(),
                "owstack": {"usage": ctx.notes.get("usage_counted", "counted")},
            }
        )

    def error(self, error: OwstackError) -> bytes:
        return _event(error.body())

    def close(self) -> bytes:
        return DONE_EVENT
