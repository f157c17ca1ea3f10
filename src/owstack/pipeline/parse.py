"""parse: the request body -> one validated internal `ChatRequest`."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from owstack.errors import InvalidRequest
from owstack.pipeline.context import RequestContext
from owstack.pipeline.stage import BaseStage
from owstack.protocol.anthropic import MessagesRequest, to_chat_request
from owstack.protocol.errors import param_of
from owstack.protocol.openai import ChatCompletionRequest
from owstack.types import ChatRequest

_OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "reasoning_policy"})


class ParseStage(BaseStage):
    name = "parse"

    async def before(self, ctx: RequestContext) -> None:
        if ctx.read_body is not None:
            ctx.body = await ctx.read_body()
        if ctx.protocol == "anthropic":
            ctx.request, ctx.reasoning_request = parse_messages(ctx.body)
        else:
            ctx.request = parse_chat(ctx.body, ctx)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    return data


def _validate(model: type[BaseModel], data: dict[str, Any]) -> None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        # Of the alternatives a union reports, the deepest location is the most specific one.
        errors = exc.errors(include_url=False)
        err = max(errors, key=lambda e: len(e["loc"]))
        param = param_of(err["loc"])
        raise InvalidRequest(f"{param}: {err['msg']}" if param else err["msg"], param=param) from None


def parse_messages(body: bytes) -> tuple[ChatRequest, str | None]:
    """An Anthropic Messages body -> the internal request and the reasoning policy its `thinking` asks for."""
    data = _json_object(body)
    _validate(MessagesRequest, data)
    return to_chat_request(data)


def parse_chat(body: bytes, ctx: RequestContext | None = None) -> ChatRequest:
    data = _json_object(body)
    _validate(ChatCompletionRequest, data)
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
        has_images=_has_images(messages),
        has_tools=bool(data.get("tools")) or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages),
    )


def _has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    return True
    return False
