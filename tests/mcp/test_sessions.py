"""owstack's record of 2025-era sessions beside the SDK's manager: opened from the SDK's answer to an
`initialize`, owned by the key that opened it, kept while in use, closed through the SDK when idle (a clock
the test controls), forgotten on a DELETE or a 404."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from owstack.mcp.sessions import HOLD, MESSAGE, OPENING, Hold, Sessions


def scope(method: str, session: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000")]
    if session is not None:
        headers.append((b"mcp-session-id", session.encode()))
    return {"type": "http", "method": method, "path": "/mcp", "headers": headers}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class FakeSdk:
    """Stands in for the SDK's session manager: answers with a status and, for an opening, a session id."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.status = 200

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen.append(scope)
        headers = []
        if OPENING in scope:  # what the server's middleware does while the SDK serves an initialize
            scope[OPENING].peer, scope[OPENING].version = "peer", "2025-11-25"
            headers.append((b"mcp-session-id", b"s1"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


async def sink(message: dict[str, Any]) -> None:
    return None


def test_sessions_follow_what_the_sdk_did() -> None:
    now = [0.0]
    sessions = Sessions(idle_s=60, clock=lambda: now[0])
    sdk = FakeSdk()

    async def main() -> None:
        await sessions.track(sdk, scope("POST"), receive, sink, owner="key-a", user="user-a")
        opened = sessions.get("s1", "key-a")
        assert opened is not None and opened.version == "2025-11-25" and opened.peer == "peer"
        assert sessions.get("s1", "key-b") is None  # another key never sees it

        now[0] = 59
        assert sessions.idle() == []
        with sessions.busy(opened):
            now[0] = 500
            assert sessions.idle() == []  # in use (a call, an open GET stream) is never idle
        now[0] = 559
        assert sessions.idle() == []
        now[0] = 560
        assert sessions.idle() == [opened]
        await sessions.close(sdk, opened)
        closing = sdk.seen[-1]
        assert closing["method"] == "DELETE" and (b"mcp-session-id", b"s1") in closing["headers"]
        assert closing["user"] == "user-a"  # the owner's identity: the SDK lets only the owner end it
        assert sessions.get("s1", "key-a") is None

        await sessions.track(sdk, scope("POST"), receive, sink, owner="key-a", user="user-a")
        sdk.status = 404
        await sessions.track(sdk, scope("DELETE", "s1"), receive, sink, owner="key-b", user="user-b")
        assert sessions.get("s1", "key-a") is not None  # another key's request cannot end someone's session
        await sessions.track(sdk, scope("POST", "s1"), receive, sink, owner="key-a", user="user-a")
        assert sessions.get("s1", "key-a") is None  # the SDK no longer knows it

    asyncio.run(main())


class Peer:
    """A session's notification channel that records what it was asked to send."""

    def __init__(self, broken: bool = False) -> None:
        self.sent: list[str] = []
        self.broken = broken

    async def _send(self, what: str) -> None:
        if self.broken:
            raise ConnectionError("the client's GET stream is gone")
        self.sent.append(what)

    async def send_tool_list_changed(self) -> None:
        await self._send("tools")

    async def send_prompt_list_changed(self) -> None:
        await self._send("prompts")

    async def send_resource_list_changed(self) -> None:
        await self._send("resources")


def test_list_changes_go_to_sessions_and_listen_streams() -> None:
    from owstack.mcp.changes import ChangeFeed
    from owstack.mcp.sessions import Session

    sessions = Sessions(idle_s=60)
    good, gone = Peer(), Peer(broken=True)
    sessions.open["a"] = Session("a", "k", None, "2025-11-25", b"h", good, 0.0)
    sessions.open["b"] = Session("b", "k", None, "2025-11-25", b"h", gone, 0.0)
    feed = ChangeFeed(sessions)
    events: list[Any] = []
    feed.bus.subscribe(events.append)

    async def main() -> None:
        for kind in ("tools", "prompts", "resources", "nonsense"):
            await feed.changed(kind)

    asyncio.run(main())
    assert good.sent == ["tools", "prompts", "resources"]  # a broken stream does not stop the others
    assert [type(e).__name__ for e in events] == ["ToolsListChanged", "PromptsListChanged", "ResourcesListChanged"]


class StreamingSdk:
    """Answers as the SDK's session transport does on a 2025 session: an SSE stream, one event a chunk, then its
    end; `during(kind)` runs after each event is sent, before the stream ends (what a client may do then)."""

    def __init__(self, during: Any) -> None:
        self.during = during

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"s1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if OPENING in scope:
            scope[OPENING].peer, scope[OPENING].version = "peer", "2025-06-18"
            events = [("answer", {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18"}})]
        else:
            progress = {"progressToken": "p", "progress": 1, "message": 'a "method" in the text'}
            events = [
                ("progress", {"jsonrpc": "2.0", "method": "notifications/progress", "params": progress}),
                ("answer", {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": '"method"'}]}}),
            ]
        for kind, event in events:
            chunk = b"event: message\r\ndata: " + orjson.dumps(event) + b"\r\n\r\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.during(kind)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def test_a_session_and_an_id_are_noted_as_their_answer_goes_out() -> None:
    """A client acts on an answer as soon as it reads its SSE event, before the stream ends: the session an
    `initialize` opened is in the record by then, and the id of a request it answered is free again."""
    sessions = Sessions(idle_s=60)
    seen: list[tuple[str, Any]] = []

    async def main() -> None:
        opening = StreamingSdk(lambda kind: seen.append((kind, sessions.get("s1", "key-a"))))
        await sessions.track(opening, scope("POST"), receive, sink, owner="key-a", user="user-a")
        session = sessions.get("s1", "key-a")
        assert session is not None and seen == [("answer", session)]

        seen.clear()
        call = StreamingSdk(lambda kind: seen.append((kind, dict(session.inflight))))
        request = scope("POST", "s1")
        request[MESSAGE] = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
        await sessions.track(call, request, receive, sink, owner="key-a", user="user-a")
        (progress, held), (answer, free) = seen
        assert (progress, list(held), answer, free) == ("progress", ["1"], "answer", {})

        # the client left before the answer while the handler runs on: the id stays held until it returns
        request = scope("POST", "s1")
        request[MESSAGE] = {"jsonrpc": "2.0", "id": "1", "method": "tools/call"}  # "1" and 1: one id
        handler: list[Hold] = []

        async def left(scope: dict[str, Any], receive: Any, send: Any) -> None:
            handler.append(scope[HOLD])
            scope[HOLD].enter()  # what the server's middleware does as the SDK runs the handler

        await sessions.track(left, request, receive, sink, owner="key-a", user="user-a")
        assert list(session.inflight) == ["1"]
        refused: list[dict[str, Any]] = []

        async def record(message: dict[str, Any]) -> None:
            refused.append(message)

        again = scope("POST", "s1")
        again[MESSAGE] = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        await sessions.track(FakeSdk(), again, receive, record, owner="key-a", user="user-a")
        assert refused[0]["status"] == 400 and orjson.loads(refused[1]["body"])["error"]["code"] == -32600
        handler[0].leave()
        assert session.inflight == {}

    asyncio.run(main())
