"""The generation endpoints' one handler: run the pipeline, then answer through the request's wire protocol.

The handler is thin and protocol-agnostic: it runs the stages and maps the result to the wire through a
`WireProtocol` (`owstack.protocols`: OpenAI chat completions, Anthropic messages, OpenAI responses), which
owns every byte of its format. Whatever happens (an error, a client that disconnects, an upstream that
breaks or ends early mid-stream, a shutdown that cannot wait), the stages' after-hooks run exactly once,
before the response's last byte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from owstack.api.disconnect import DisconnectWatch, uncancel
from owstack.api.http import SSE_HEADERS, Headers, Receive, Scope, Send, body_reader, error_headers, send_json
from owstack.errors import InternalError, OwstackError, ServiceUnavailable
from owstack.pipeline.context import RequestContext
from owstack.pipeline.pipeline import Run
from owstack.protocols.base import WireProtocol
from owstack.routing.primed import PrimedStream
from owstack.types import JSON, Completion, Usage

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

log = logging.getLogger("owstack.api")
access = logging.getLogger("owstack.access")
CLIENT_CLOSED = 499  # nginx's code for "client closed request", used in the ledger and audit log


async def handle(
    gw: Gateway,
    wire: WireProtocol,
    ctx: RequestContext,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    read_body: Callable[[], Awaitable[bytes]] | None = None,
) -> None:
    """`read_body`: the body when the route has read it already (otherwise it is read, within the limit)."""
    ctx.protocol = wire.name
    ctx.wire = wire
    watch = DisconnectWatch(receive)
    reader = read_body or body_reader(scope, receive, gw.max_body_bytes)

    async def read_and_watch() -> bytes:
        body = await reader()
        watch.start()  # from here on, `receive` only tells us about a disconnect
        return body

    ctx.read_body = read_and_watch
    run = gw.pipeline.run(ctx)
    try:
        await run.before()
        result = ctx.result
        if isinstance(result, Completion):
            await _send_completion(gw, wire, ctx, run, result, send, watch)
        elif isinstance(result, PrimedStream):
            await _send_stream(gw, wire, ctx, run, result, send, watch)
        else:  # pragma: no cover - the call stage always sets a result
            raise InternalError(ctx.request_id)
    except OwstackError as exc:
        # Nothing left to cancel: a disconnect now must not cut the records short (it was a CancelledError
        # out of this handler, a traceback in the log, and the stages after the one it hit not finished).
        watch.stop()
        run.fail(exc)
        await run.finish()
        await _send_error(gw, wire, ctx, send, exc)
    except asyncio.CancelledError:
        if not watch.fired:
            if ctx.owned or run.finished:
                raise  # its owner cancelled it (and settles it), or the records are being made: nothing to say
            # The server cut the request (the shutdown grace is over, or a retired configuration's): answer so,
            # and record it as cut (503), not as the 200 the finally below would have recorded.
            uncancel()
            cut = ServiceUnavailable("the gateway is shutting down; the request was cut", code="shutdown")
            run.fail(cut)
            log.warning("request %s: cut at shutdown", ctx.request_id)
            await run.finish()
            await _send_error(gw, wire, ctx, send, cut)
            return
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
        await _send_error(gw, wire, ctx, send, error)
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
    request_id = ctx.request_id.encode()
    out = [
        (b"x-request-id", request_id),
        (b"x-owstack-layer", (ctx.layer or "none").encode()),
        (b"x-owstack-backend", (ctx.backend or "none").encode()),
    ]
    extra = ctx.wire.request_id_header if ctx.wire is not None else None
    if extra:
        out.append((extra, request_id))
    for name, value in ctx.response_headers.items():
        out.append((name.encode("latin-1"), value.encode("latin-1")))
    return out


async def _send_error(gw: Gateway, wire: WireProtocol, ctx: RequestContext, send: Send, error: OwstackError) -> None:
    status, body = wire.error(error, ctx.request_id)
    await send_json(send, status, body, error_headers(error, headers(ctx)))


async def _send_completion(
    gw: Gateway,
    wire: WireProtocol,
    ctx: RequestContext,
    run: Run,
    result: Completion,
    send: Send,
    watch: DisconnectWatch,
) -> None:
    if result.usage is not None:
        ctx.usage = result.usage
    ctx.finish_reason = result.finish_reason
    for choice in result.body.get("choices") or ():
        if isinstance(choice, dict) and isinstance(choice.get("stop_reason"), str):
            ctx.stop_sequence = choice["stop_reason"]
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(choice, dict) and isinstance(choice.get("text"), str):
            ctx.output_text.append(choice["text"])  # a legacy completion
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                ctx.output_text.append(content)
            if message.get("tool_calls"):
                ctx.tool_calls.extend(message["tool_calls"])
    if not ctx.usage.reported:
        await count_usage(gw, ctx)
    payload = wire.completion(ctx, result)
    await wire.settle(ctx)
    ctx.first_byte_at = time.perf_counter()
    failure = await run.finish()
    watch.stop()
    if failure is not None:
        await _send_error(gw, wire, ctx, send, failure)
        return
    await send_json(send, 200, payload, [*headers(ctx), gw.ai_marker_header])


async def _send_stream(
    gw: Gateway,
    wire: WireProtocol,
    ctx: RequestContext,
    run: Run,
    stream: PrimedStream,
    send: Send,
    watch: DisconnectWatch,
) -> None:
    encoder = wire.encoder(ctx)
    if getattr(encoder, "wants_prompt_tokens", False) and not ctx.usage.prompt_tokens:
        await count_prompt(gw, ctx)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers(ctx), gw.ai_marker_header]}
    )
    ctx.first_byte_at = time.perf_counter()
    try:
        await _body(send, encoder.start(ctx))
        async for chunk in stream.chunks():
            observe(ctx, chunk)
            body = encoder.chunk(chunk)
            if body:
                await send({"type": "http.response.body", "body": body, "more_body": True})
        ctx.stream_outcome = "ok"
        if encoder.wants_usage and not ctx.usage.reported:
            await count_usage(gw, ctx)
        await wire.settle(ctx)
    except OwstackError as exc:
        # Mid-stream: the status line is gone; end the stream with an error event the SDKs understand.
        ctx.stream_outcome = "failed"
        run.fail(exc)
        log.warning("request %s: stream from %s broke: %s", ctx.request_id, ctx.backend, exc.message)
        await _body(send, encoder.error(exc))
    except Exception:
        # A bug while converting a chunk: the status line is gone too, so the stream ends with an error event
        # (a traceback in the log, never a connection cut mid-chunk), recorded as failed.
        log.exception("request %s: stream from %s failed", ctx.request_id, ctx.backend)
        ctx.stream_outcome = "failed"
        error = InternalError(ctx.request_id)
        run.fail(error)
        await _body(send, encoder.error(error))
    except asyncio.CancelledError:
        if watch.fired:
            raise  # the client went away: nothing more to send
        # The server is shutting down and the grace period is over: say so before the connection goes.
        uncancel()
        ctx.stream_outcome = "cut"
        cut = ServiceUnavailable("the gateway is shutting down; the stream was cut", code="shutdown")
        run.fail(cut)
        log.warning("request %s: stream cut at shutdown", ctx.request_id)
        await _body(send, encoder.error(cut))
    finally:
        if ctx.stream_outcome is None:
            await stream.aclose()
    failure = await run.finish()
    watch.stop()
    tail = encoder.end(ctx) if ctx.stream_outcome == "ok" and failure is None else b""
    if failure is not None:
        tail = encoder.error(failure)
    await send({"type": "http.response.body", "body": tail + encoder.close(), "more_body": False})


async def _body(send: Send, body: bytes) -> None:
    if body:
        await send({"type": "http.response.body", "body": body, "more_body": True})


async def count_prompt(gw: Gateway, ctx: RequestContext) -> None:
    """The prompt's tokens before the upstream reports them (Anthropic's `message_start` carries them)."""
    request = ctx.request
    assert request is not None
    counter = await gw.token_counter(ctx.backend)
    ctx.usage = Usage(prompt_tokens=await gw.count(counter, counter.prompt, request.messages), reported=False)


async def count_usage(gw: Gateway, ctx: RequestContext) -> None:
    """Usage for a response whose upstream reported none: counted with the model's tokenizer where owstack has
    one, estimated otherwise (`ctx.usage.reported` stays False; the ledger records which)."""
    request = ctx.request
    assert request is not None
    counter = await gw.token_counter(ctx.backend)
    text = "".join(ctx.output_text)
    prompt = ctx.usage.prompt_tokens or await gw.count(counter, counter.prompt, request.messages)
    completion = await gw.count(counter, counter.text, text)
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
        elif isinstance(choice.get("text"), str):
            ctx.output_text.append(choice["text"])  # a legacy completion chunk
        if choice.get("finish_reason"):
            ctx.finish_reason = choice["finish_reason"]
            stop = choice.get("stop_reason")
            if isinstance(stop, str):
                ctx.stop_sequence = stop
