"""POST /v1/chat/completions: run the pipeline, then answer with JSON or server-sent events.

The handler is thin: it makes the request context, runs the stages, and maps the result to the wire.
Whatever happens (an error, a client that disconnects, an upstream that breaks mid-stream), the stages'
after-hooks run exactly once, before the response's last byte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from owstack.api.http import SSE_HEADERS, Headers, Receive, Scope, Send, body_reader, send_error, send_json
from owstack.backends.sse import DONE_EVENT
from owstack.errors import OwstackError
from owstack.pipeline.context import RequestContext
from owstack.pipeline.pipeline import Run
from owstack.routing.call import PrimedStream
from owstack.types import JSON, Completion, Usage

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

log = logging.getLogger("owstack.api")
CLIENT_CLOSED = 499  # nginx's code for "client closed request", used in the ledger and audit log


class InternalError(OwstackError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error; quote request id {request_id} to the operator")


async def chat_completions(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    watch = _DisconnectWatch(receive)
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
            await _send_completion(gw, ctx, run, result, send, watch)
        elif isinstance(result, PrimedStream):
            await _send_stream(gw, ctx, run, result, send, watch)
        else:  # pragma: no cover - the call stage always sets a result
            raise InternalError(ctx.request_id)
    except OwstackError as exc:
        run.fail(exc)
        await run.finish()
        watch.stop()
        await send_error(send, exc, _headers(gw, ctx))
    except asyncio.CancelledError:
        if not watch.fired:
            raise  # shutdown, not the client
        _uncancel()
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
        await send_error(send, error, _headers(gw, ctx))
    finally:
        watch.stop()
        if not run.finished:
            await run.finish()


def _headers(gw: Gateway, ctx: RequestContext) -> Headers:
    headers = [
        (b"x-request-id", ctx.request_id.encode()),
        (b"x-owstack-layer", (ctx.layer or "none").encode()),
        (b"x-owstack-backend", (ctx.backend or "none").encode()),
    ]
    for name, value in ctx.response_headers.items():
        headers.append((name.encode("latin-1"), value.encode("latin-1")))
    return headers


def _marker(ctx: RequestContext) -> JSON:
    """Art. 50: a machine-readable mark that the content is AI-generated, and by what."""
    return {"ai_generated": True, "request_id": ctx.request_id, "layer": ctx.layer, "backend": ctx.backend}


async def _send_completion(
    gw: Gateway, ctx: RequestContext, run: Run, result: Completion, send: Send, watch: _DisconnectWatch
) -> None:
    body = result.body
    if result.usage is not None:
        ctx.usage = result.usage
    ctx.finish_reason = result.finish_reason
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                ctx.output_text.append(content)
            if message.get("tool_calls"):
                ctx.tool_calls.extend(message["tool_calls"])
    body["owstack"] = _marker(ctx)
    payload = orjson.dumps(body)
    ctx.first_byte_at = time.perf_counter()
    failure = await run.finish()
    watch.stop()
    if failure is not None:
        await send_error(send, failure, _headers(gw, ctx))
        return
    await send_json(send, 200, payload, [*_headers(gw, ctx), gw.ai_marker_header])


async def _send_stream(
    gw: Gateway, ctx: RequestContext, run: Run, stream: PrimedStream, send: Send, watch: _DisconnectWatch
) -> None:
    assert ctx.request is not None
    include_usage = ctx.request.include_usage
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, *_headers(gw, ctx), gw.ai_marker_header],
        }
    )
    first: JSON | None = None
    try:
        async for chunk in stream.chunks():
            if first is None:
                first = chunk
                chunk = {**chunk, "owstack": _marker(ctx)}
                ctx.first_byte_at = time.perf_counter()
            if not _observe(ctx, chunk, include_usage):
                continue
            await send(
                {"type": "http.response.body", "body": b"data: " + orjson.dumps(chunk) + b"\n\n", "more_body": True}
            )
        ctx.stream_outcome = "ok"
        if include_usage and not ctx.usage.reported:
            await send({"type": "http.response.body", "body": await _counted_usage(gw, ctx, first), "more_body": True})
    except OwstackError as exc:
        # Mid-stream: the status line is gone; end the stream with an error event the SDKs understand.
        ctx.stream_outcome = "failed"
        run.fail(exc)
        log.warning("request %s: stream from %s broke: %s", ctx.request_id, ctx.backend, exc.message)
        await send({"type": "http.response.body", "body": _error_event(exc), "more_body": True})
    finally:
        if ctx.stream_outcome is None:
            await stream.aclose()
    failure = await run.finish()
    watch.stop()
    if failure is not None:
        await send({"type": "http.response.body", "body": _error_event(failure), "more_body": True})
    await send({"type": "http.response.body", "body": DONE_EVENT, "more_body": False})


async def _counted_usage(gw: Gateway, ctx: RequestContext, first: JSON | None) -> bytes:
    """The usage chunk the client asked for, when the upstream sent none: counted by owstack with the model's
    tokenizer where it has one (an estimate otherwise, flagged in `owstack.usage`)."""
    request = ctx.request
    assert request is not None
    counter = await gw.token_counter(ctx.backend)
    text = "".join(ctx.output_text)
    prompt, completion = await asyncio.to_thread(lambda: (counter.prompt(request.messages), counter.text(text)))
    ctx.usage = Usage(prompt_tokens=prompt, completion_tokens=completion, reported=False)
    chunk = {
        "id": (first or {}).get("id", f"chatcmpl-{ctx.request_id}"),
        "object": "chat.completion.chunk",
        "created": (first or {}).get("created", int(time.time())),
        "model": ctx.model,
        "choices": [],
        "usage": ctx.usage.to_openai(),
        "owstack": {"usage": "counted" if counter.exact else "estimated"},
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _observe(ctx: RequestContext, chunk: JSON, include_usage: bool) -> bool:
    """Read usage, text and finish reason off a chunk; False when the chunk is not for the client."""
    usage = chunk.get("usage")
    choices = chunk.get("choices") or ()
    if usage:
        parsed = Usage.from_openai(usage)
        if parsed is not None:
            ctx.usage = parsed
        if not include_usage:
            if not choices:
                return False
            del chunk["usage"]
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            content = delta.get("content")
            if content:
                ctx.output_text.append(content)
            if delta.get("tool_calls"):
                ctx.tool_calls.extend(delta["tool_calls"])
        if isinstance(choice, dict) and choice.get("finish_reason"):
            ctx.finish_reason = choice["finish_reason"]
    return True


def _error_event(error: OwstackError) -> bytes:
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


class _DisconnectWatch:
    """Cancels the request's task when its client goes away, so upstream work stops with it."""

    __slots__ = ("_future", "_receive", "_task", "fired")

    def __init__(self, receive: Receive) -> None:
        self.fired = False
        self._task = asyncio.current_task()
        self._future: asyncio.Future[Any] | None = None
        self._receive = receive

    def start(self) -> None:
        if self._future is None:
            self._future = asyncio.ensure_future(self._receive())
            self._future.add_done_callback(self._on_message)

    def _on_message(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None or self._task is None:
            return
        if future.result().get("type") == "http.disconnect" and not self.fired:
            self.fired = True
            self._task.cancel()

    def stop(self) -> None:
        future = self._future
        self._future = None
        self._task = None
        if future is not None and not future.done():
            future.cancel()
