"""Legacy completions and embeddings: validated, carried through the pipeline as an internal request whose
`endpoint` says which, and answered with the upstream's body plus owstack's marker.

The prompt (or the embeddings' input) is also put in `messages` as one user message, so that routing rules,
token counts, limits and the ledger see its text. The upstream receives the client's own body, except that
the guard makes control tokens in `prompt` and `suffix` inert and refuses a prompt of token ids, unless
the operator trusts legacy prompts (`security.guard.keep_control_tokens: [prompt]`, for clients that
template the prompt themselves or fill in the middle), and makes those in the embeddings' `input` strings
inert unless it trusts `input` (engines tokenize it with special tokens parsed; token ids pass as sent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from owstack.errors import InvalidRequest, OwstackError
from owstack.protocols.base import Plain, marker
from owstack.protocols.body import json_object, validate
from owstack.protocols.openai_chat.codec import OpenAIStream
from owstack.protocols.openai_chat.schema import StreamOptions
from owstack.types import JSON, ChatRequest, Completion

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext

TextOrTokens = str | list[str] | list[int] | list[list[int]]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CompletionsRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    prompt: TextOrTokens
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None


class EmbeddingsRequest(_Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: TextOrTokens
    encoding_format: str | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "\n".join(v for v in value if isinstance(v, str))


#: Chat Completions' fields, which these endpoints do not take (OpenAI answers 400 for them too)
_CHAT_ONLY = ("messages", "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls")


def _request(data: JSON, endpoint: str, text: str, stream: bool) -> ChatRequest:
    for name in _CHAT_ONLY:
        if name in data:
            raise InvalidRequest(
                f"`{name}` belongs to POST /v1/chat/completions; /v1/{endpoint} does not take it", param=name
            )
    params = {k: v for k, v in data.items() if k not in ("model", "stream", "stream_options")}
    return ChatRequest(
        model=data["model"],
        messages=[{"role": "user", "content": text}],
        stream=stream,
        include_usage=bool(stream and (data.get("stream_options") or {}).get("include_usage")),
        params=params,
        endpoint=endpoint,
    )


class _Passthrough(Plain):
    def error(self, error: OwstackError, request_id: str) -> tuple[int, bytes]:
        return error.status, orjson.dumps(error.body())

    def completion(self, ctx: RequestContext, result: Completion) -> bytes:
        body = result.body
        if not body.get("usage"):
            body["usage"] = ctx.usage.to_openai()
        body["owstack"] = marker(ctx)
        return orjson.dumps(body)

    def encoder(self, ctx: RequestContext) -> OpenAIStream:
        assert ctx.request is not None
        return OpenAIStream(ctx, ctx.request.include_usage)


class OpenAICompletions(_Passthrough):
    name = "completions"

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        data = json_object(body)
        validate(CompletionsRequest, data)
        return _request(data, "completions", _text(data["prompt"]), bool(data.get("stream")))


class OpenAIEmbeddings(_Passthrough):
    name = "embeddings"

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest:
        data = json_object(body)
        validate(EmbeddingsRequest, data)
        if data.get("stream"):
            raise InvalidRequest("embeddings are not streamed", param="stream")
        return _request(data, "embeddings", _text(data["input"]), False)
