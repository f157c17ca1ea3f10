"""A real gateway whose MCP upstream (a raw HTTP server) answers `tools/list` and `tools/call` with malformed
JSON-RPC: tool lists that are not lists, tools without names or with schemas of the wrong kind, nested 3,000
deep or 3 MB descriptions, results that are null, not JSON, nested 3,000 deep, 30 MB, with content of the wrong
kind, error objects with a string code, another request's id. Whatever the upstream sends, the agent gets a
JSON-RPC answer (a result or an error object), never a 5xx, the good tools stay callable, and the gateway's
log holds no traceback.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from procs import free_port, run_gateway

GOOD_TOOLS = [
    {
        "name": "echo",
        "description": "Echo the text back.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]
LIST_CASES = {
    "ok": {"tools": GOOD_TOOLS},
    "tools_str": {"tools": "x"},
    "tools_null": {"tools": None},
    "tool_int": {"tools": [1, *GOOD_TOOLS]},
    "name_int": {"tools": [{"name": 5, "inputSchema": {}}, *GOOD_TOOLS]},
    "name_nul": {"tools": [{"name": "a\u0000b", "inputSchema": {"type": "object"}}, *GOOD_TOOLS]},
    "schema_str": {"tools": [{"name": "s", "inputSchema": "x"}, *GOOD_TOOLS]},
    "schema_deep": b'{"jsonrpc":"2.0","id":%d,"result":{"tools":[{"name":"d","inputSchema":'
    + b'{"a":' * 3000
    + b"1"
    + b"}" * 3000
    + b"}]}}",
    "desc_huge": {
        "tools": [{"name": "h", "description": "x" * 3_000_000, "inputSchema": {"type": "object"}}, *GOOD_TOOLS]
    },
    "many": {"tools": [{"name": f"t{i}", "inputSchema": {"type": "object"}} for i in range(20000)] + GOOD_TOOLS},
    "dupes": {"tools": GOOD_TOOLS * 3},
    "result_null": None,
    "next_cursor_loop": {"tools": GOOD_TOOLS, "nextCursor": "again"},
}
CALL_CASES = {
    "ok": {"content": [{"type": "text", "text": "hi"}]},
    "content_str": {"content": "x"},
    "content_null": {"content": None},
    "item_int": {"content": [1]},
    "text_int": {"content": [{"type": "text", "text": 5}]},
    "type_unknown": {"content": [{"type": "weird", "data": 1}]},
    "image_bad": {"content": [{"type": "image", "data": "!!!", "mimeType": 5}]},
    "iserror_str": {"content": [{"type": "text", "text": "x"}], "isError": "yes"},
    "structured_list": {"content": [], "structuredContent": [1, 2]},
    "result_null": None,
    "deep": b'{"jsonrpc":"2.0","id":%d,"result":{"content":[],"structuredContent":'
    + b'{"a":' * 3000
    + b"1"
    + b"}" * 3000
    + b"}}",
    "big": {"content": [{"type": "text", "text": "x" * 30_000_000}]},
}
RAW = {
    "error_code_str": b'{"jsonrpc":"2.0","id":%d,"error":{"code":"bad","message":5}}',
    "id_mismatch": b'{"jsonrpc":"2.0","id":999999,"result":{"content":[]}}',
    "not_json": b"<html>",
    "empty": b"",
    "list": b"[1,2,3]",
}


class HostileServer:
    """Streamable HTTP (2025-06-18, one JSON answer per POST) with the cases chosen by `state`."""

    def __init__(self) -> None:
        self.port = free_port()
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", self.port, limit=2**26))
            started.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        started.wait(10)


state = {"list": "ok", "call": "ok"}


async def handle(reader, writer):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            part = await reader.read(65536)
            if not part:
                return
            data += part
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            part = await reader.read(65536)
            if not part:
                break
            rest += part
        if not head.startswith(b"POST"):
            writer.write(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        msg = json.loads(rest)
        mid, method = msg.get("id"), msg.get("method")
        if mid is None:
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "initialize":
            result = {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
            body = json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}).encode()
        elif method in ("tools/list", "tools/call"):
            case = state["list" if method == "tools/list" else "call"]
            if case in RAW:
                body = RAW[case] % mid if b"%d" in RAW[case] else RAW[case]
            else:
                cases = LIST_CASES if method == "tools/list" else CALL_CASES
                value = cases[case]
                body = (
                    value % mid
                    if isinstance(value, bytes)
                    else json.dumps({"jsonrpc": "2.0", "id": mid, "result": value}).encode()
                )
        else:
            body = json.dumps({"jsonrpc": "2.0", "id": mid, "result": {}}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s1\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )
    except Exception:
        pass
    finally:
        try:
            await writer.drain()
            writer.close()
        except Exception:
            pass


META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
}


def post(url: str, method: str, params: dict[str, Any], name: str | None = None) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
               "Mcp-Method": method}  # fmt: skip
    if name:
        headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}}
    return httpx.post(url + "/mcp", json=body, headers=headers, timeout=60)


def answer(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    data = r.json()
    assert data.get("jsonrpc") == "2.0" and ("result" in data or isinstance(data["error"]["code"], int)), data
    return data


@pytest.fixture(scope="module")
def server() -> HostileServer:
    return HostileServer()


def gateway(tmp: Path, server: HostileServer) -> Any:
    upstream = {"url": f"http://127.0.0.1:{server.port}/mcp", "allow_networks": ["127.0.0.1/32"], "protocol": "legacy"}
    config = {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "mcp": {"servers": {"h": upstream}, "call_timeout_s": 20},
    }
    return run_gateway(tmp, config, ready=False)


@pytest.mark.parametrize("case", ["tools_str", "tool_int", "name_int", "schema_deep", "desc_huge", "result_null"])
def test_a_malformed_tool_list_leaves_a_json_rpc_edge(case: str, server: HostileServer, tmp_path: Path) -> None:
    state["list"], state["call"] = case, "ok"
    with gateway(tmp_path, server) as gw:
        answer(post(gw.url, "tools/list", {}))
        called = answer(post(gw.url, "tools/call", {"name": "h.echo", "arguments": {"text": "x"}}, "h.echo"))
        if case in ("tool_int", "name_int", "desc_huge"):  # the good tool beside the bad one is still served
            assert called["result"]["content"][0]["text"] == "hi", called
        assert httpx.get(gw.url + "/healthz").status_code == 200
        assert "Traceback" not in gw.log()


def test_malformed_tool_results_are_json_rpc_answers(server: HostileServer, tmp_path: Path) -> None:
    state["list"] = "ok"
    with gateway(tmp_path, server) as gw:
        for case in [*CALL_CASES, *RAW]:
            state["call"] = case
            data = answer(post(gw.url, "tools/call", {"name": "h.echo", "arguments": {"text": "x"}}, "h.echo"))
            if case == "ok":
                assert data["result"]["content"][0]["text"] == "hi"
        assert httpx.get(gw.url + "/healthz").status_code == 200
        assert "Traceback" not in gw.log()
