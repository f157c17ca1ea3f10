"""One JSON-RPC id in flight at a time on a 2025 session (owstack.mcp.sessions): requests sent concurrently
with one id are refused at once (HTTP 400, -32600 naming the id), all but the first, on the SDK's path (a
call with a progress token) and on the lean edge; the id is usable again once the first request has ended,
whether it was answered, failed, was cancelled, or its client left (then once its call has ended)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import httpx
import orjson
from mcp_stack import McpStack

VERSION = "2025-06-18"
REQUEST_CANCELLED = -32800


class Session:
    """A 2025 session on `/mcp` spoken with plain HTTP (the SDK's client never reuses an id)."""

    def __init__(self, stack: McpStack, tenant: str = "acme") -> None:
        self.url = stack.url
        self.headers = {
            "Authorization": f"Bearer {stack.keys[tenant]}",
            "Accept": "application/json, text/event-stream",
        }

    async def open(self, http: httpx.AsyncClient) -> None:
        params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "ids", "version": "1"}}
        r = await http.post(self.url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
                            headers=self.headers)  # fmt: skip
        assert r.status_code == 200, r.text
        self.headers |= {"Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": VERSION}
        r = await http.post(
            self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers
        )
        assert r.status_code == 202, r.text

    async def call(
        self, http: httpx.AsyncClient, request_id: Any, tool: str, arguments: dict[str, Any], *, sdk: bool = True
    ) -> tuple[int, dict[str, Any] | None, float]:
        """(HTTP status, the JSON-RPC answer, seconds it took) of one `tools/call`; `sdk`: with a progress token,
        so that the SDK's server serves it (without one, the lean edge does)."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if sdk:
            params["_meta"] = {"progressToken": f"p-{time.monotonic_ns()}"}
        return await self.post(http, {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})

    async def post(self, http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        start = time.monotonic()
        r = await http.post(self.url, json=body, headers=self.headers)
        return r.status_code, answer(r), time.monotonic() - start

    async def cancel(self, http: httpx.AsyncClient, request_id: Any) -> None:
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}
        r = await http.post(self.url, json=note, headers=self.headers)
        assert r.status_code == 202, r.text


def answer(r: httpx.Response) -> dict[str, Any] | None:
    if r.headers.get("content-type", "").startswith("application/json"):
        return dict(orjson.loads(r.content)) if r.content else None
    for line in r.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            message = orjson.loads(line[5:])
            if "result" in message or "error" in message:
                return dict(message)
    return None


def refused(outcome: tuple[int, dict[str, Any] | None, float], request_id: Any) -> bool:
    status, body, _ = outcome
    return (
        status == 400
        and body is not None
        and body["id"] == request_id
        and body["error"]["code"] == -32600
        and f"request id {request_id!r} is already in flight" in body["error"]["message"]
    )


def echoed(outcome: tuple[int, dict[str, Any] | None, float], text: str) -> bool:
    status, body, _ = outcome
    return status == 200 and body is not None and body.get("result", {}).get("content", [{}])[0].get("text") == text


def _code(body: dict[str, Any] | None) -> Any:
    return None if body is None else body["error"]["code"] if "error" in body else "result"


def concurrent_one_id(stack: McpStack, request_id: Any, *, sdk: bool) -> None:
    """16 POSTs at once with one id, the first a call of 3 s: one answered, 15 refused at once; the id then
    works again."""

    async def go() -> tuple[list[tuple[int, dict[str, Any] | None, float]], Any]:
        session = Session(stack)
        async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=32)) as http:
            await session.open(http)
            slow = {"steps": 30, "delay": 0.1}
            with anyio.fail_after(30):  # an unanswered POST hangs (its SSE stream stays open): fail, do not wait
                outcomes = await asyncio.gather(*(session.call(http, request_id, "remote.slow", slow, sdk=sdk)
                                                  for _ in range(16)))  # fmt: skip
            again = await session.call(http, request_id, "remote.echo", {"text": "again"}, sdk=sdk)
            return list(outcomes), again

    outcomes, again = anyio.run(go)
    answered = [o for o in outcomes if o[0] == 200 and o[1] is not None and "result" in o[1]]
    refusals = [o for o in outcomes if refused(o, request_id)]
    assert len(answered) == 1 and len(refusals) == 15, [(o[0], _code(o[1]), round(o[2], 2)) for o in outcomes]
    assert answered[0][1]["result"]["content"][0]["text"] == "counted to 30"  # type: ignore[index]
    slowest = max(o[2] for o in refusals)
    assert slowest < answered[0][2] and slowest < 2.5, f"refusals took up to {slowest:.2f} s"  # at once, never waiting
    assert echoed(again, "again")


def test_one_id_in_flight_on_the_sdk_path(stack: McpStack) -> None:
    concurrent_one_id(stack, 42, sdk=True)


def test_one_id_in_flight_on_the_lean_edge(stack: McpStack) -> None:
    concurrent_one_id(stack, "same-id", sdk=False)


def test_the_id_is_released_after_an_error_a_cancel_and_a_client_that_left(stack: McpStack) -> None:
    async def go() -> None:
        session = Session(stack)
        async with httpx.AsyncClient(timeout=20) as http:
            await session.open(http)
            # an error: the tool is unknown (the SDK's server answers with a JSON-RPC error)
            status, body, _ = await session.call(http, 5, "remote.nope", {})
            assert status == 200 and body is not None and body["error"]["code"] == -32602, body
            assert echoed(await session.call(http, 5, "remote.echo", {"text": "after an error"}), "after an error")

            # a cancel: notifications/cancelled ends the call; its POST is answered -32800
            slow = asyncio.create_task(session.call(http, 6, "remote.slow", {"steps": 300, "delay": 0.1}))
            await asyncio.sleep(0.5)
            assert refused(await session.call(http, 6, "remote.echo", {"text": "x"}), 6)  # still in flight
            await session.cancel(http, 6)
            status, body, _ = await slow
            assert body is not None and body["error"]["code"] == REQUEST_CANCELLED, (status, body)
            assert echoed(await session.call(http, 6, "remote.echo", {"text": "after a cancel"}), "after a cancel")

            # a client that left: on a 2025 session that does not cancel the call, so the id is held until the
            # call has ended (its answer must not reach a new request with the id), then usable again
            with anyio.move_on_after(0.8):  # the POST is closed mid-stream
                await session.call(http, 7, "remote.slow", {"steps": 50, "delay": 0.1})
            assert refused(await session.call(http, 7, "remote.echo", {"text": "x"}), 7)
            deadline = time.monotonic() + 30
            while True:
                outcome = await session.call(http, 7, "remote.echo", {"text": "after leaving"})
                if not refused(outcome, 7) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert echoed(outcome, "after leaving"), outcome

    anyio.run(go)


def test_an_id_reused_as_soon_as_its_answer_arrives_is_served(stack: McpStack) -> None:
    """Clients that send every request with one id (python-sdk issue #3060) send the next as soon as they read
    the answer's SSE event, before its stream ends: the id is free by then."""

    async def go() -> list[tuple[int, dict[str, Any] | None, float]]:
        session = Session(stack)
        outcomes = []
        async with httpx.AsyncClient(timeout=20) as http:
            await session.open(http)
            for i in range(10):
                params = {"name": "remote.echo", "arguments": {"text": f"n{i}"}, "_meta": {"progressToken": f"t{i}"}}
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
                async with http.stream("POST", session.url, json=body, headers=session.headers) as r:
                    assert r.status_code == 200
                    async for line in r.aiter_lines():
                        if line.startswith("data:") and '"result"' in line:
                            break
                    # the answer is read, its stream not yet: the same id again, on the lean edge and the SDK's path
                    outcomes.append(await session.call(http, 1, "remote.echo", {"text": f"lean{i}"}, sdk=False))
                    outcomes.append(await session.call(http, 1, "remote.echo", {"text": f"sdk{i}"}))
        return outcomes

    outcomes = anyio.run(go)
    expected = [f"{kind}{i}" for i in range(10) for kind in ("lean", "sdk")]
    assert all(echoed(o, text) for o, text in zip(outcomes, expected, strict=True)), [
        (o[0], _code(o[1])) for o in outcomes
    ]
