"""`/v1/responses`: create (through the pipeline, or in the background), and the stored responses by id.

POST   /v1/responses                       the generation handler; `background: true` answers `queued`
                                           at once and runs the request in a task (store required)
GET    /v1/responses/{id}                  a stored response of the caller's tenant
DELETE /v1/responses/{id}
POST   /v1/responses/{id}/cancel           cancels a background response still running
GET    /v1/responses/{id}/input_items      the items the response was given (`limit`, `order`, `after`)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from owstack.api.handler import handle
from owstack.api.http import Message, Receive, Scope, Send, body_reader, send_json
from owstack.errors import InvalidRequest, NotFound, OwstackError, RateLimited
from owstack.pipeline.context import RequestContext
from owstack.protocols.responses import encode
from owstack.protocols.responses.codec import OpenAIResponses
from owstack.protocols.responses.request import Turn

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

log = logging.getLogger("owstack.api")


class Background:
    """The background responses this process runs (a gateway service: their tasks end at shutdown)."""

    name = "responses.background"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def unavailable(self) -> str | None:
        return None


def _wire(gw: Gateway) -> OpenAIResponses:
    wire = gw.protocols.responses
    assert isinstance(wire, OpenAIResponses)
    return wire


def _replay(body: bytes) -> Receive:
    """A `receive` that gives the body once, then waits forever (no client to disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return receive


async def create(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    wire = _wire(gw)
    try:
        body = await body_reader(scope, receive, gw.max_body_bytes)()
    except OwstackError as exc:
        error = exc

        async def refuse() -> bytes:
            raise error  # inside the pipeline, so that the refusal is audited like any other

        await handle(gw, wire, ctx, scope, receive, send, read_body=refuse)
        return
    if _background(body):
        await _create_background(gw, wire, ctx, scope, body, send)
        return

    async def read() -> bytes:
        return body

    await handle(gw, wire, ctx, scope, receive, send, read_body=read)


def _background(body: bytes) -> bool:
    if b'"background"' not in body:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and data.get("background") is True


async def _create_background(
    gw: Gateway, wire: OpenAIResponses, ctx: RequestContext, scope: Scope, body: bytes, send: Send
) -> None:
    await gw.authenticate(ctx)
    ctx.protocol, ctx.wire = wire.name, wire
    await wire.parse(body, ctx)  # validation errors come back now, not from the task
    turn = ctx.wire_state
    assert isinstance(turn, Turn)
    if turn.body.get("stream"):
        raise InvalidRequest("background responses are not streamed here; poll GET /v1/responses/{id}", param="stream")
    background: Background = gw.background
    if len(background.tasks) >= background.limit:
        raise RateLimited(f"{background.limit} background responses are already running (responses.max_background)")
    queued = encode.response(ctx, turn, status="queued", output=[], with_usage=False)
    await wire.store.put(ctx.tenant, queued, turn.input_items)
    rid = queued["id"]
    inner = RequestContext(request_id=ctx.request_id, headers=ctx.headers, client=ctx.client)
    task = asyncio.create_task(_run(gw, wire, inner, scope, body, ctx.tenant, queued, turn))
    background.tasks[rid] = task
    task.add_done_callback(lambda _: background.tasks.pop(rid, None))
    await send_json(send, 200, orjson.dumps(queued), [(b"x-request-id", ctx.request_id.encode())])


async def _run(
    gw: Gateway,
    wire: OpenAIResponses,
    ctx: RequestContext,
    scope: Scope,
    body: bytes,
    tenant: str,
    queued: Any,
    turn: Turn,
) -> None:
    outcome: dict[str, Any] = {"status": 0, "body": b""}

    async def capture(message: Message) -> None:
        if message["type"] == "http.response.start":
            outcome["status"] = message["status"]
        elif message["type"] == "http.response.body":
            outcome["body"] += message.get("body", b"")

    try:
        await handle(gw, wire, ctx, scope, _replay(body), capture)
    except asyncio.CancelledError:
        await wire.store.put(tenant, {**queued, "status": "cancelled"}, turn.input_items)
        raise
    except Exception:  # never lose the row: the client polls it
        log.exception("background response %s failed", queued["id"])
        outcome["status"] = 500
    if outcome["status"] != 200:
        try:
            error = orjson.loads(outcome["body"]).get("error") or {}
        except (orjson.JSONDecodeError, AttributeError):
            error = {}
        # A refusal without a code of its own (a 4xx) is the client's error, not the server's: its type says so.
        fallback = error.get("type") if 400 <= outcome["status"] < 500 else None
        failed = {
            **queued,
            "status": "failed",
            "error": {
                "code": error.get("code") or fallback or "server_error",
                "message": error.get("message") or "the request failed",
            },
        }
        await wire.store.put(tenant, failed, turn.input_items)


async def _stored(gw: Gateway, ctx: RequestContext, scope: Scope) -> Any:
    await gw.authenticate(ctx)
    rid = scope["path_params"]["id"]
    stored = await _wire(gw).store.get(ctx.tenant, rid)
    if stored is None:
        raise NotFound(f"Response with id '{rid}' not found.", code="response_not_found")
    return stored


async def retrieve(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    stored = await _stored(gw, ctx, scope)
    await send_json(send, 200, orjson.dumps(stored.body), [(b"x-request-id", ctx.request_id.encode())])


async def delete(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    await gw.authenticate(ctx)
    rid = scope["path_params"]["id"]
    task = gw.background.tasks.get(rid)
    if task is not None:
        task.cancel()
    if not await _wire(gw).store.delete(ctx.tenant, rid):
        raise NotFound(f"Response with id '{rid}' not found.", code="response_not_found")
    body = {"id": rid, "object": "response", "deleted": True}
    await send_json(send, 200, orjson.dumps(body), [(b"x-request-id", ctx.request_id.encode())])


async def cancel(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    stored = await _stored(gw, ctx, scope)
    rid = stored.body["id"]
    if not stored.body.get("background"):
        raise InvalidRequest("Only background responses can be cancelled.", param="response_id")
    task = gw.background.tasks.get(rid)
    if task is not None and stored.status in ("queued", "in_progress"):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stored = await _stored(gw, ctx, scope)
    await send_json(send, 200, orjson.dumps(stored.body), [(b"x-request-id", ctx.request_id.encode())])


async def input_items(gw: Gateway, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
    stored = await _stored(gw, ctx, scope)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        limit = int(query.get("limit", ["20"])[0])
    except ValueError:
        raise InvalidRequest("limit must be a whole number from 1 to 100", param="limit") from None
    if not 1 <= limit <= 100:
        raise InvalidRequest("limit must be a whole number from 1 to 100", param="limit")
    order = query.get("order", ["desc"])[0]
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be asc or desc", param="order")
    given = stored.items[: len(stored.items) - len(stored.body.get("output") or [])]
    items = [{"id": item.get("id") or f"item_{stored.body['id']}_{i}", **item} for i, item in enumerate(given)]
    if order == "desc":
        items.reverse()
    after = query.get("after", [None])[0]
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise InvalidRequest(f"no item {after!r} in this response's input", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }
    await send_json(send, 200, orjson.dumps(body), [(b"x-request-id", ctx.request_id.encode())])


__all__ = ["Background", "OwstackError", "cancel", "create", "delete", "input_items", "retrieve"]
