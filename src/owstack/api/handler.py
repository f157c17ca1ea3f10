"""The generation endpoints' one handler: run the pipeline, then answer through a protocol edge.

The handler is thin: it makes the request context, runs the stages, and maps the result to the wire through
an `Edge` (OpenAI chat completions, Anthropic messages), which owns every byte of the protocol. Whatever
happens (an error, a client that disconnects, an upstream that breaks mid-stream), the stages' after-hooks
run exactly once, before the response's last byte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Protocol

import orjson

from owstack.api.disconnect import DisconnectWatch, uncancel
from owstack.api.http import SSE_HEADERS, Headers, Receive, Scope, Send, body_reader, send_json
from owstack.errors import OwstackError
from owstack.pipeline.context import RequestContext
from owstack.pipeline.pipeline import Run
from owstack.routing.call import PrimedStream
from owstack.types import JSON, Completion, Usage

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

log = logging.getLogger("owstack.api")
access = logging.getLogger("owstack.access")
CLIENT_CLOSED = 499  # nginx's code for "client closed request", used in the ledger and audit log


class InternalError(OwstackError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error; quote request id {request_id} to the operator")


class StreamEncoder(Protocol):
    """One response stream in a protocol: OpenAI chunks in, that protocol's events out."""

    #: the client expects usage at the end even when the upstream sent none (owstack then counts it)
    wants_usage: bool

    def chunk(self, chunk: JSON) -> bytes: ...

    def end(self, ctx: RequestContext) -> bytes: ...

    def error(self, error: OwstackError) -> bytes: ...

    def close(self) -> bytes:
        """The last bytes of every stream, after an end or an error (OpenAI's `[DONE]`)."""
        ...


class Edge(Protocol):
    protocol: str

    def error(self, error: OwstackError) -> tuple[int, bytes]: ...

    def completion(self, ctx: RequestContext, result: Completion) -> bytes: ...

    def encoder(self, ctx: RequestContext) -> StreamEncoder: ...


async def handle(gw: Gateway, edge: Edge, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    ctx.protocol = edge.protocol
    watch = DisconnectWatch(receive)
    reader = body_reader(scope, receive, gw.max_body_bytes)

    async def read_body() -> bytes:
        body = await reader()
        watch.start()  # from here on, `receive` only tells us about a disconnect
        return body

    ctx.read_body = read_body
    run = gw.pipeline.run(ctx)
    try:
        await run.before()
        result = ctx.result
        if isinstance(result, Completion):
            await _send_completion(gw, edge, ctx, run, result, send, watch)
        elif isinstance(result, PrimedStream):
            await _send_stream(gw, edge, ctx, run, result, send, watch)
        else:  # pragma: no cover - the call stage always sets a result
            raise InternalError(ctx.request_id)
    except OwstackError as exc:
        run.fail(exc)
        await run.finish()
        watch.stop()
        await _send_error(gw, edge, ctx, send, exc)
    except asyncio.CancelledError:
        if not watch.fired:
            raise  # shutdown, not the client
        uncancel()
        ctx.client_disconnected = True
        ctx.status = CLIENT_CLOSED
        ctx.stream_outcome = ctx.stream_outcome or "abandoned"
        await run.finish()
    except Exception:
        log.exception("request %s failed", ctx.request_id)
        error = InternalError(ctx.request_id)
        run.fail(error)
        await run.finish()
        watch.stop()
        await _send_error(gw, edge, ctx, send, error)
    finally:
        watch.stop()
        if not run.finished:
            await run.finish()
        if gw.access_log:
            _access_log(ctx, gw.log_content)


def _access_log(ctx: RequestContext, content: bool) -> None:
    latency = ctx.latency_s
    access.info(
        "%s tenant=%s protocol=%s layer=%s backend=%s status=%d latency_ms=%.1f tokens=%d/%d attempts=%d",
        ctx.request_id,
        ctx.tenant,
        ctx.protocol,
        ctx.layer,
        ctx.backend,
        ctx.status,
        (latency or 0.0) * 1000,
        ctx.usage.prompt_tokens,
        ctx.usage.completion_tokens,
        len(ctx.attempts),
    )
    if content and ctx.request is not None:
        access.info("%s prompt=%s", ctx.request_id, orjson.dumps(ctx.request.messages).decode())
        access.info("%s completion=%s", ctx.request_id, "".join(ctx.output_text))


def headers(ctx: RequestContext) -> Headers:
    out = [
        (b"x-request-id", ctx.request_id.encode()),
        (b"x-owstack-layer", (ctx.layer or "none").encode()),
        (b"x-owstack-backend", (ctx.backend or "none").encode()),
    ]
    for name, value in ctx.response_headers.items():
        out.append((name.encode("latin-1"), value.encode("latin-1")))
    return out


def marker(ctx: RequestContext) -> JSON:
    """Art. 50: a machine-readable mark that the content is AI-generated, and by what."""
    return {"ai_generated": True, "request_id": ctx.request_id, "layer": ctx.layer, "backend": ctx.backend}


async def _send_error(gw: Gateway, edge: Edge, ctx: RequestContext, send: Send, error: OwstackError) -> None:
    status, body = edge.error(error)
    extra = headers(ctx)
    if status == 401:
        extra.append((b"www-authenticate", b'Bearer realm="owstack"'))
    await send_json(send, status, body, extra)


async def _send_completion(
    gw: Gateway, edge: Edge, ctx: RequestContext, run: Run, result: Completion, send: Send, watch: DisconnectWatch
) -> None:
    if result.usage is not None:
        ctx.usage = result.usage
    ctx.finish_reason = result.finish_reason
    for choice in result.body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                ctx.output_text.append(content)
            if message.get("tool_calls"):
                ctx.tool_calls.extend(message["tool_calls"])
    if not ctx.usage.reported:
        await count_usage(gw, ctx)
    payload = edge.completion(ctx, result)
    ctx.first_byte_at = time.perf_counter()
    failure = await run.finish()
    watch.stop()
    if failure is not None:
        await _send_error(gw, edge, ctx, send, failure)
        return
    await send_json(send, 200, payload, [*headers(ctx), gw.ai_marker_header])


async def _send_stream(
    gw: Gateway, edge: Edge, ctx: RequestContext, run: Run, stream: PrimedStream, send: Send, watch: DisconnectWatch
) -> None:
    encoder = edge.encoder(ctx)
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [*SSE_HEADERS, *headers(ctx), gw.ai_marker_header],
    }
    await send(start)
    try:
        async for chunk in stream.chunks():
            if ctx.first_byte_at is None:
                ctx.first_byte_at = time.perf_counter()
            observe(ctx, chunk)
            body = encoder.chunk(chunk)
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
        ctx.stream_outcome = "ok"
        if encoder.wants_usage and not ctx.usage.reported:
            await count_usage(gw, ctx)
    except OwstackError as exc:
        # Mid-stream: the status line is gone; end the stream with an error event the SDKs understand.
        ctx.stream_outcome = "failed"
        run.fail(exc)
        log.warning("request %s: stream from %s broke: %s", ctx.request_id, ctx.backend, exc.message)
        await send({"type": "http.response.body", "body": encoder.error(exc), "more_body": True})
    finally:
        if ctx.stream_outcome is None:
            await stream.aclose()
    failure = await run.finish()
    watch.stop()
    tail = encoder.end(ctx) if ctx.stream_outcome == "ok" and failure is None else b""
    if failure is not None:
        tail = encoder.error(failure)
    await send({"type": "http.response.body", "body": tail + encoder.close(), "more_body": False})


async def count_usage(gw: Gateway, ctx: RequestContext) -> None:
    """Usage for a response whose upstream reported none: counted with the model's tokenizer where owstack has
    one, estimated otherwise (`ctx.usage.reported` stays False; the ledger records which)."""
    request = ctx.request
    assert request is not None
    counter = await gw.token_counter(ctx.backend)
    text = "".join(ctx.output_text)
    prompt, completion = await asyncio.to_thread(lambda: (counter.prompt(request.messages), counter.text(text)))
    ctx.usage = Usage(prompt_tokens=prompt, completion_tokens=completion, reported=False)
    ctx.notes["usage_counted"] = "counted" if counter.exact else "estimated"


def observe(ctx: RequestContext, chunk: JSON) -> None:
    """Read usage, text, tool calls and the finish reason off an OpenAI chunk."""
    usage = chunk.get("usage")
    if usage:
        parsed = Usage.from_openai(usage)
        if parsed is not None:
            ctx.usage = parsed
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if content:
                ctx.output_text.append(content)
            if delta.get("tool_calls"):
                ctx.tool_calls.extend(delta["tool_calls"])
        if choice.get("finish_reason"):
            ctx.finish_reason = choice["finish_reason"]
