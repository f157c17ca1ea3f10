"""JSON that Python's `json` reads and orjson (owstack's JSON: the audit record, the ledger, the lean edge) does
not: `NaN`, `Infinity`, numbers past a double, lone surrogates, and integers past 64 bits (which orjson reads
as a float, Python's json exactly). On `/mcp` such a body went to the SDK, which read it: a lone surrogate in
a tool's arguments failed the call's audit record (answered as an audit outage, a traceback in the log) and
then its serialisation to the stdio upstream, which closed that upstream's connection for every caller until
its restart; an integer past 64 bits failed the audit record; `NaN` reached the tool as `null`. Now every such
body is a JSON-RPC parse error (-32700, HTTP 400), on the lean edge and on the SDK's path alike.
"""

from __future__ import annotations

import httpx
import pytest
from mcp_stack import McpStack

META = (
    '"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", '
    '"io.modelcontextprotocol/clientCapabilities": {}, '
    '"io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}'
)
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
#: values Python's json module reads and orjson refuses, or reads as a float (integers past 64 bits)
VALUES = ['"\\ud800"', '"a\\udfffb"', "NaN", "-Infinity", "1e400", "9" * 400, str(2**64), str(-(2**63) - 1)]


def _headers(stack: McpStack, version: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {stack.keys['acme']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }


def _assert_parse_error(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32700, body


@pytest.mark.parametrize("value", VALUES)
def test_a_tool_call_with_json_owstack_cannot_carry_is_a_parse_error(stack: McpStack, value: str) -> None:
    with httpx.Client(timeout=30) as client:
        # 2026-07-28, stateless: the lean edge reads the body
        modern = {**_headers(stack, "2026-07-28"), "Mcp-Method": "tools/call", "Mcp-Name": "local.echo"}
        body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "local.echo", '
        body += f'"arguments": {{"text": {value}}}, {META}}}}}'
        _assert_parse_error(client.post(stack.url, content=body.encode(), headers=modern))
        # with a progress token: the lean edge leaves the call to the SDK
        progress = body.replace('"_meta": {', '"_meta": {"progressToken": 1, ')
        _assert_parse_error(client.post(stack.url, content=progress.encode(), headers=modern))

        # on a 2025 session
        legacy = _headers(stack, "2025-06-18")
        opened = client.post(
            stack.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT}, headers=legacy
        )
        assert opened.status_code == 200, opened.text
        session = {**legacy, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        client.post(stack.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
        call = '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "local.echo", '
        call += f'"arguments": {{"text": {value}}}}}}}'
        _assert_parse_error(client.post(stack.url, content=call.encode(), headers=session))

        # the stdio upstream still serves, at once
        good = '{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "local.echo", '
        good += f'"arguments": {{"text": "still here"}}, {META}}}}}'
        echoed = client.post(stack.url, content=good.encode(), headers=modern)
        assert echoed.status_code == 200 and echoed.json()["result"]["content"][0]["text"] == "still here", echoed.text
    log = stack.gateway.log()
    assert "not written" not in log and "upstream local failed" not in log and "Traceback" not in log


@pytest.mark.parametrize("value", VALUES)
def test_an_initialize_the_sdk_reads_with_such_json_is_a_parse_error(stack: McpStack, value: str) -> None:
    """No session yet: the lean edge leaves the request to the SDK, whose path checks the body the same way."""
    init = '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", '
    init += f'"capabilities": {{}}, "clientInfo": {{"name": "t", "version": "1"}}, "_meta": {{"x": {value}}}}}}}'
    with httpx.Client(timeout=30) as client:
        _assert_parse_error(client.post(stack.url, content=init.encode(), headers=_headers(stack, "2025-06-18")))
    assert "Traceback" not in stack.gateway.log()


def test_a_body_over_the_limit_on_the_lean_edge_is_a_json_rpc_error(stack: McpStack) -> None:
    headers = {**_headers(stack, "2026-07-28"), "Mcp-Method": "tools/call", "Mcp-Name": "local.echo"}
    body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "local.echo", '
    body += f'"arguments": {{"text": "{"x" * 17_000_000}"}}, {META}}}}}'
    with httpx.Client(timeout=60) as client:
        response = client.post(stack.url, content=body.encode(), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600, response.text[:300]
