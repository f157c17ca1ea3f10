"""The OpenAI chat-completions protocol: the internal types are OpenAI's already, so parsing validates and
keeps the body's fields, and encoding adds the owstack marker, filters the usage chunk the client did not ask
for, and writes SSE."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from owstack.errors import OwstackError
from owstack.protocols.base import Plain, marker
from owstack.protocols.body import json_object, validate
from owstack.protocols.openai_chat.schema import ChatCompletionRequest
from owstack.types import JSON, ChatRequest, Completion

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext

DONE_EVENT = b"data: [DONE]\n\n"
#: fields the gateway reads itself; every other field travels to the upstream as the client wrote it
_OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "reasoning_policy"})
_TAGS = {
    "messages": frozenset({"system", "developer", "user", "assistant", "tool", "function"}),
    "content": frozenset({"text", "image_url", "input_audio", "file", "refusal"}),
}


def _event(obj: JSON) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def parse_chat(body: bytes, ctx: RequestContext | None = None) -> ChatRequest:
    data = json_object(body)
    validate(ChatCompletionRequest, data, tags=_TAGS)
    messages: list[dict[str, Any]] = data["messages"]
    params = {k: v for k, v in data.items() if k not in _OWN_FIELDS}
    stream = bool(data.get("stream"))
    options = data.get("stream_options") or {}
    if ctx is not None:
        ctx.reasoning_request = data.get("reasoning_policy")
    return ChatRequest(
        model=data["model"],
        messages=messages,
        stream=stream,
        include_usage=bool(stream and options.get("include_usage")),
        params=params,
        has_images=has_images(messages),
        has_tools=bool(data.get("tools")) or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages),
    )


def has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    return True
    return False


class OpenAIChat(Plain):
    name = "openai"

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        return parse_chat(body, ctx)

    def error(self, error: OwstackError, request_id: str) -> tuple[int, bytes]:
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

    def start(self, ctx: RequestContext) -> bytes:
        return b""

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
