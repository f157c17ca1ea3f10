"""The lean lane against a real HTTP server on a socket that answers as MCP servers may: a 2025 session that
expires (404) and is re-opened, answers as SSE streams carrying a request to the client (refused), a
2026-07-28 `input_required` result (refused), and an answer past the size limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from owstack.mcp.errors import UpstreamUnavailable
from owstack.mcp.lane import HttpLane

Answer = Callable[[dict[str, Any], dict[str, str]], Awaitable[tuple[int, dict[str, str], bytes]]]


class Server:
    """A keep-alive HTTP/1.1 server whose answer to each POST is `answer(message, headers)`; it records every
    message and the headers it came with."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.seen: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/mcp"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if lines[0].startswith("GET"):
                    writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                message = json.loads(body)
                self.seen.append((message, headers))
                status, extra, payload = await self.answer(message, headers)
                out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(payload)}"] + [
                    f"{k}: {v}" for k, v in extra.items()
                ]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def json_reply(message: dict[str, Any], result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({"jsonrpc": "2.0", "id": message["id"],
                                                                  "result": result}).encode()  # fmt: skip


def lane(url: str, version: str, max_bytes: int = 1 << 20) -> Awaitable[HttpLane]:
    return HttpLane.open("up", url, {"authorization": "Bearer upstream-secret"}, address="127.0.0.1",
                         version=version, max_bytes=max_bytes)  # fmt: skip


def test_a_2025_session_is_reopened_and_sse_answers_refuse_client_requests() -> None:
    sessions: list[str] = []

    async def answer(message: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        method = message.get("method")
        if method == "initialize":
            sessions.append(f"s{len(sessions) + 1}")
            reply = json_reply(message, {"protocolVersion": "2025-11-25", "capabilities": {},
                                         "serverInfo": {"name": "t", "version": "1"}})  # fmt: skip
            return reply[0], {**reply[1], "Mcp-Session-Id": sessions[-1]}, reply[2]
        if "id" not in message or "method" not in message:  # notifications, and our answers to its requests
            return 202, {}, b""
        if headers.get("mcp-session-id") != sessions[-1] or len(sessions) == 1:
            return 404, {}, b""  # the first session has expired by the time of the call
        ask = {"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}}
        note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}
        done = {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [{"type": "text", "text": "ok"}]}}
        stream = b"".join(b"event: message\r\ndata: " + json.dumps(m).encode() + b"\r\n\r\n" for m in (note, ask, done))
        return 200, {"Content-Type": "text/event-stream"}, stream

    async def main() -> tuple[dict[str, Any], Server]:
        async with Server(answer) as server:
            up = await lane(server.url, "2025-11-25")
            try:
                result = await up.request("tools/call", {"name": "echo", "arguments": {}}, timeout_s=10)
                await asyncio.sleep(0.2)  # the refusal is posted beside the call
            finally:
                await up.aclose()
            return result, server

    result, server = asyncio.run(main())
    assert result["content"][0]["text"] == "ok"
    assert sessions == ["s1", "s2"]  # re-opened once after the 404
    refusal = next(m for m, _ in server.seen if m.get("id") == "srv-1")
    assert refusal["error"]["code"] == -32600 and "owstack does not relay" in refusal["error"]["message"]
    assert all(h.get("authorization") == "Bearer upstream-secret" for _, h in server.seen)


def test_2026_requests_are_self_contained_and_input_required_is_refused() -> None:
    async def answer(message: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if message["params"]["name"] == "big":
            return json_reply(message, {"content": [{"type": "text", "text": "x" * 5000}]})
        asks = {"a": {"method": "elicitation/create", "params": {"message": "?"}}}
        return json_reply(message, {"resultType": "input_required", "inputRequests": asks})

    async def main() -> tuple[list[BaseException], Server]:
        async with Server(answer) as server:
            up = await lane(server.url, "2026-07-28", max_bytes=1000)
            errors: list[BaseException] = []
            try:
                for name in ("ask", "big"):
                    try:
                        await up.request("tools/call", {"name": name}, timeout_s=10, name=name)
                    except (MCPError, UpstreamUnavailable) as exc:
                        errors.append(exc)
            finally:
                await up.aclose()
            return errors, server

    errors, server = asyncio.run(main())
    assert isinstance(errors[0], MCPError) and errors[0].code == -32600
    assert errors[0].message.startswith("Elicitation not supported")
    assert isinstance(errors[1], UpstreamUnavailable) and "more than 1000 bytes" in errors[1].message
    message, headers = server.seen[0]
    assert message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert headers["mcp-method"] == "tools/call" and headers["mcp-name"] == "ask"
    assert "mcp-session-id" not in headers and not [m for m, _ in server.seen if m.get("method") == "initialize"]


@pytest.mark.parametrize("status", [500, 302])
def test_an_answer_that_is_not_json_rpc_is_an_unavailable_upstream(status: int) -> None:
    async def answer(message: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "text/html", "Location": "http://169.254.169.254/"}, b"<html>no</html>"

    async def main() -> BaseException:
        async with Server(answer) as server:
            up = await lane(server.url, "2026-07-28")
            try:
                with pytest.raises(UpstreamUnavailable) as failed:
                    await up.request("tools/call", {"name": "x"}, timeout_s=10, name="x")
                return failed.value
            finally:
                await up.aclose()

    error = asyncio.run(main())
    assert f"HTTP {status}" in str(error)  # a redirect is never followed
