"""`/v1/responses`: create (through the pipeline, or in the background), and the stored responses by id.

POST   /v1/responses                       the generation handler; `background: true` answers `queued`
                                           at once and runs the request in a task (store required)
GET    /v1/responses/{id}                  a stored response of the caller's tenant
DELETE /v1/responses/{id}
POST   /v1/responses/{id}/cancel           cancels a background response still running (run by another
                                           gateway process: asks it to, and answers the row as it is)
GET    /v1/responses/{id}/input_items      the items the response was given (`limit`, `order`, `after`)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
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
from owstack.protocols.responses.store import ResponseStore

if TYPE_CHECKING:
    from owstack.api.gateway import Gateway

log = logging.getLogger("owstack.api")


class Background:
    """The background responses this process runs (a gateway service: their tasks end at shutdown).

    Each one's row is leased by this process (`ResponseStore.instance`): while any runs, one heartbeat task
    renews all their leases together every third of `responses.background_lease_s`, and hears what other
    replicas asked meanwhile: a cancel (the task is cancelled, the row stored `cancelled`) or a delete (the
    task is cancelled, nothing stored). At shutdown the tasks get the grace period requests in flight get
    (`server.shutdown_grace_s`, counted from SIGTERM and the drain delay, see `api/app.py`); those still
    running at its end are stored `failed` with code `shutdown`, never `cancelled` (the client did not ask).
    """

    name = "responses.background"

    def __init__(self, limit: int, store: ResponseStore, *, grace_s: float = 25.0) -> None:
        self.limit = limit
        self.store = store
        self.grace_s = grace_s
        self.tasks: dict[str, asyncio.Task[None]] = {}
        store.running = self.tasks  # this process's own running rows are never read as lapsed
        #: set at the end of the shutdown grace: the tasks cancelled then are stored failed (shutdown)
        self.stopping = False
        #: when the shutdown grace ends (the loop's clock), once a SIGTERM or a reload said so
        self.deadline: float | None = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        return None

    def run(self, rid: str, work: Coroutine[Any, Any, None]) -> None:
        """Run a background response whose `queued` row this process has just written."""
        task = asyncio.create_task(work, name=f"owstack-background-{rid}")
        self.tasks[rid] = task
        task.add_done_callback(lambda _: self._ended(rid))
        if self._beat is None:
            self._beat = asyncio.create_task(self._heartbeat(), name="owstack-background-heartbeat")

    def _ended(self, rid: str) -> None:
        self.tasks.pop(rid, None)
        if not self.tasks and self._beat is not None:  # the last one: no heartbeat until the next
            self._beat.cancel()
            self._beat = None

    async def _heartbeat(self) -> None:
        """Renew the leases while any task runs (no task, no heartbeat: a gateway that runs no background
        response pays nothing); act on what other replicas asked."""
        interval = self.store.lease_s / 3
        while True:  # cancelled when the last task ends
            await asyncio.sleep(interval)
            ids = list(self.tasks)
            if not ids:
                continue
            try:
                cancel, deleted, revoked = await self.store.heartbeat(ids)
            except Exception as exc:  # the database is down: the leases run out unless it is back in time
                log.warning("background responses: the lease heartbeat failed: %s", exc)
                continue
            for rid in cancel:
                self._stop(rid, "cancelled by a request to another gateway process")
            for rid in deleted:
                self._stop(rid, "deleted by a request to another gateway process")
            for rid in revoked:  # this process had not renewed in time; its outcome would not be stored
                self._stop(rid, "failed by a reader that found its lease run out")

    def _stop(self, rid: str, why: str) -> None:
        task = self.tasks.get(rid)
        if task is not None and not task.done():
            log.info("background response %s: %s; stopping it", rid, why)
            task.cancel()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self.deadline if self.deadline is not None else loop.time() + self.grace_s
        if self.tasks:
            log.info("waiting up to %.1f s for %d background response(s)", deadline - loop.time(), len(self.tasks))
        while self.tasks and loop.time() < deadline:  # a second SIGTERM moves the deadline to now
            await asyncio.wait(list(self.tasks.values()), timeout=min(1.0, deadline - loop.time()))
            deadline = self.deadline if self.deadline is not None else deadline
        if self.tasks:
            log.warning("%d background response(s) still running at the end of the shutdown grace", len(self.tasks))
            self.stopping = True
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self._beat is not None:
            beat, self._beat = self._beat, None
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

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
    inner = RequestContext(request_id=ctx.request_id, headers=ctx.headers, client=ctx.client, owned=True)
    background.run(rid, _run(gw, wire, inner, scope, body, ctx.tenant, queued, turn))
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
        if not await wire.store.put(tenant, {**queued, "status": "in_progress"}, turn.input_items):
            log.info("background response %s: deleted or cancelled before it started", queued["id"])
            return
        await handle(gw, wire, ctx, scope, _replay(body), capture)
    except asyncio.CancelledError:
        if gw.background.stopping:
            error = {"code": "shutdown", "message": _SHUTDOWN.format(gw.background.grace_s)}
            await _settle(wire, tenant, {**queued, "status": "failed", "error": error}, turn)
        else:
            await _settle(wire, tenant, {**queued, "status": "cancelled"}, turn)
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
        await _settle(wire, tenant, failed, turn)


_SHUTDOWN = (
    "the gateway shut down before this background response finished (its grace of {:g} s ran out); send it again"
)


async def _settle(wire: OpenAIResponses, tenant: str, body: Any, turn: Turn) -> None:
    """Store a background response's end, unless its row is no longer this process's to write."""
    if not await wire.store.put(tenant, body, turn.input_items):
        log.info("background response %s: deleted or ended elsewhere; its %s is not stored", body["id"], body["status"])


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
    if stored.status in ("queued", "in_progress"):  # not lapsed: `_stored` would have said failed
        task = gw.background.tasks.get(rid)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stored = await _stored(gw, ctx, scope)
        else:  # another gateway process runs it: it cancels it at its next heartbeat; the row says so then
            await _wire(gw).store.request_cancel(ctx.tenant, rid)
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
