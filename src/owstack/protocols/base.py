"""What a wire protocol is: parse a body into the internal request, encode results and errors back.

    parse(body, ctx)          -> ChatRequest          (raises InvalidRequest with `param`)
    completion(ctx, result)   -> bytes                (a whole response in the protocol's JSON)
    encoder(ctx)              -> StreamEncoder        (OpenAI chunks in, the protocol's events out)
    error(exc, request_id)    -> (status, bytes)      (the protocol's error shape)
    settle(ctx)                                       (after a successful response, before the stages'
                                                       after-hooks: e.g. the Responses API stores it)

The handler calls exactly these; a protocol keeps whatever per-request state it needs on its encoder or in
`ctx.wire_state`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from owstack.errors import OwstackError
from owstack.types import JSON, ChatRequest, Completion

if TYPE_CHECKING:
    from owstack.pipeline.context import RequestContext


class StreamEncoder(Protocol):
    """One response stream: OpenAI chunks in, the protocol's events out."""

    #: the client expects usage at the end even when the upstream sent none (owstack then counts it)
    wants_usage: bool

    def start(self, ctx: RequestContext) -> bytes:
        """The first bytes, sent before the first chunk (e.g. `message_start`, `response.created`)."""
        ...

    def chunk(self, chunk: JSON) -> bytes: ...

    def end(self, ctx: RequestContext) -> bytes:
        """The closing events of a stream that ended normally."""
        ...

    def error(self, error: OwstackError) -> bytes:
        """An error event, for a stream that broke after its status line was sent."""
        ...

    def close(self) -> bytes:
        """The last bytes of every stream, after an end or an error (OpenAI's `[DONE]`)."""
        ...


class WireProtocol(Protocol):
    #: the protocol's name in the ledger and the audit log: openai, anthropic, responses
    name: str
    #: extra response headers this protocol's clients expect (e.g. Anthropic's `request-id`)
    request_id_header: bytes | None

    async def parse(self, body: bytes, ctx: RequestContext) -> ChatRequest: ...

    def completion(self, ctx: RequestContext, result: Completion) -> bytes: ...

    def encoder(self, ctx: RequestContext) -> StreamEncoder: ...

    def error(self, error: OwstackError, request_id: str) -> tuple[int, bytes]: ...

    async def settle(self, ctx: RequestContext) -> None: ...


class Plain:
    """Defaults for the optional parts of a protocol."""

    request_id_header: bytes | None = None

    async def settle(self, ctx: RequestContext) -> None:
        return None


def marker(ctx: RequestContext) -> JSON:
    """Art. 50: a machine-readable mark that the content is AI-generated, and by what."""
    return {"ai_generated": True, "request_id": ctx.request_id, "layer": ctx.layer, "backend": ctx.backend}
