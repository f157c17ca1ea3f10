"""The lean edge and the lean lane against a real `owstack serve` and real upstreams: the same answers as the
SDK's server, cancellation both ways, the 2025-session lane, refused server-to-client requests, list changes
forwarded to clients of both revisions, and the rate cap on the lean edge."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp_stack import McpStack
from test_gateway import audit_records, wait_for

from mcp import Client

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
}


def metric(stack: McpStack, name: str, **labels: str) -> float:
    text = httpx.get(stack.gateway.url + "/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def post(stack: McpStack, tenant: str, method: str, params: dict[str, Any], name: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.keys[tenant]}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}  # fmt: skip
    if name is not None:
        headers["Mcp-Name"] = name
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": method,
        "params": {**params, "_meta": {**META, **params.get("_meta", {})}},
    }
    return httpx.post(stack.url, json=body, headers=headers, timeout=30)


def test_lean_edge_answers_as_the_sdk_does(stack: McpStack) -> None:
    lean_before = metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="lean")
    sdk_before = metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="sdk")
    args = {"name": "remote.echo", "arguments": {"text": "same either way"}}
    lean = post(stack, "acme", "tools/call", args, "remote.echo")
    # a progress token is the SDK's case: the same call, answered by the SDK's server
    sdk = post(stack, "acme", "tools/call", {**args, "_meta": {"progressToken": "p1"}}, "remote.echo")
    assert lean.status_code == sdk.status_code == 200
    assert lean.headers["content-type"].startswith("application/json")
    assert lean.json() == sdk.json()
    result = lean.json()["result"]
    assert result["content"][0]["text"] == "same either way" and result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "owstack"
    assert metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="lean") == lean_before + 1
    assert metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="sdk") == sdk_before + 1

    listed_lean = post(stack, "acme", "tools/list", {}).json()["result"]
    listed_sdk = post(stack, "acme", "tools/list", {"_meta": {"progressToken": "p2"}}).json()["result"]
    assert [t["name"] for t in listed_lean["tools"]] == [t["name"] for t in listed_sdk["tools"]]
    assert listed_lean["ttlMs"] == listed_sdk["ttlMs"] and listed_lean["cacheScope"] == listed_sdk["cacheScope"]

    # what the SDK refuses, the lean edge leaves to it: the same JSON-RPC errors as before
    mismatch = post(stack, "acme", "tools/call", args, "remote.other")  # Mcp-Name disagrees with the body
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == -32020
    refused = post(stack, "beta", "tools/call", {"name": "remote.fetch", "arguments": {"url": "x"}}, "remote.fetch")
    assert refused.json()["error"]["code"] == -32060 and refused.json()["error"]["data"]["code"] == "tool_not_allowed"


def test_lean_edge_serves_2025_sessions(stack: McpStack) -> None:
    before = metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="lean")

    async def go(c: Client) -> Any:
        await c.list_tools()
        return [await c.call_tool("remote.echo", {"text": f"n{i}"}) for i in range(3)]

    results = stack.run("acme", go, "legacy")
    assert [r.content[0].text for r in results] == ["n0", "n1", "n2"]
    assert metric(stack, "owstack_mcp_edge_requests_total", method="tools/call", path="lean") >= before + 3


def test_cancelling_a_session_call_reaches_the_upstream(stack: McpStack) -> None:
    cancelled = stack.remote.state / "cancelled"
    cancelled.unlink(missing_ok=True)

    async def go(c: Client) -> str:
        with anyio.move_on_after(1.5):  # no progress callback: served by the lean edge and lane
            await c.call_tool("remote.slow", {"steps": 300, "delay": 0.1})
        # the session goes on after a cancel (closing it at once races the SDK client's own shutdown against
        # the answer to the cancelled call, which it then fails to deliver to its closed stream)
        return str((await c.call_tool("remote.echo", {"text": "still here"})).content[0].text)

    assert stack.run("acme", go, "legacy") == "still here"
    assert wait_for(cancelled.exists), "the upstream never saw the cancellation"


def test_closing_the_post_cancels_on_2026(stack: McpStack) -> None:
    cancelled = stack.remote.state / "cancelled"
    cancelled.unlink(missing_ok=True)
    with pytest.raises(httpx.ReadTimeout):
        headers = {"Authorization": f"Bearer {stack.keys['acme']}", "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                   "Mcp-Name": "remote.slow"}  # fmt: skip
        params = {"name": "remote.slow", "arguments": {"steps": 300, "delay": 0.1}, "_meta": META}
        httpx.post(stack.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params},
                   headers=headers, timeout=httpx.Timeout(30, read=1.5))  # fmt: skip
    assert wait_for(cancelled.exists), "the upstream never saw the cancellation"
    records = [r for r in audit_records(stack) if r["type"] == "mcp.request" and r["mcp"]["tool"] == "remote.slow"]
    assert any(r["outcome"]["error_code"] == "cancelled" for r in records)


def test_2025_upstream_lane_and_refused_server_requests(stack: McpStack) -> None:
    before = metric(stack, "owstack_mcp_upstream_requests_total", server="remote25", via="lane")

    async def go(c: Client) -> tuple[Any, Any]:
        return await c.call_tool("remote25.echo", {"text": "over a 2025 session"}), await c.call_tool("remote25.ask")

    echo, ask = stack.run("acme", go, "2026-07-28")
    assert echo.content[0].text == "over a 2025 session"
    assert metric(stack, "owstack_mcp_upstream_requests_total", server="remote25", via="lane") >= before + 2
    # the upstream asked for elicitation on the call's stream: owstack answered it with a JSON-RPC error
    assert ask.content[0].text.startswith("refused: -32600 Elicitation not supported")
    assert "owstack does not relay" in ask.content[0].text


def test_list_changes_reach_clients_of_both_revisions(stack: McpStack) -> None:
    tools_file = stack.remote.state / "tools.json"
    from upstream_tools import DEFAULT_TOOLS

    changed = json.loads(json.dumps(DEFAULT_TOOLS))
    next(t for t in changed if t["name"] == "crash")["description"] = "Exit the process, now with a twist."
    seen: dict[str, list[Any]] = {"legacy": [], "modern": []}

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            seen["legacy"].append(message)

    async def go() -> None:
        from mcp_stack import client_for

        async with (
            client_for(stack, "acme", "legacy", on_message) as old,
            client_for(stack, "acme", "2026-07-28") as new,
        ):
            await old.list_tools()
            async with new.listen(tools_list_changed=True) as subscription:

                async def collect() -> None:
                    async for event in subscription:
                        seen["modern"].append(event)
                        return

                async with anyio.create_task_group() as tg:
                    tg.start_soon(collect)
                    tools_file.write_text(json.dumps(changed))  # a rug pull of remote.crash ...
                    await new.call_tool("remote.announce")  # ... that the upstream announces
                    with anyio.fail_after(20):
                        while not (seen["legacy"] and seen["modern"]):
                            await anyio.sleep(0.05)
            names = [t.name for t in (await new.list_tools()).tools]
            assert "remote.crash" not in names  # withheld: the client re-lists and no longer sees it

    try:
        anyio.run(go)
    finally:
        tools_file.unlink(missing_ok=True)
    assert seen["legacy"] and seen["modern"]


def test_rate_cap_applies_on_the_lean_edge(stack: McpStack) -> None:
    codes = []
    for _ in range(6):
        reply = post(stack, "gamma", "tools/call", {"name": "remote.echo", "arguments": {"text": "x"}}, "remote.echo")
        body = reply.json()
        codes.append(body["error"]["code"] if "error" in body else 0)
    assert 0 in codes and -32065 in codes
    refused = [r for r in audit_records(stack) if r["type"] == "mcp.request" and r["actor"]["tenant"] == "gamma"
               and r["outcome"]["error_code"] == "rate_limit_exceeded"]  # fmt: skip
    assert refused and refused[0]["outcome"]["status"] == 429


def test_a_cancel_naming_no_call_is_not_a_500(stack: McpStack) -> None:
    headers = {"Authorization": f"Bearer {stack.keys['acme']}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}}
    opened = httpx.post(stack.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
                        headers=headers, timeout=30)  # fmt: skip
    headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
    httpx.post(stack.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers, timeout=30)
    for request_id in ({"x": 1}, [1], None, 1.5, "no-such-call"):  # a dict or list: TypeError (unhashable), a 500
        params = {"requestId": request_id}
        sent = httpx.post(stack.url, json={"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params},
                          headers=headers, timeout=30)  # fmt: skip
        assert sent.status_code < 500 and sent.status_code in (202, 400), (request_id, sent.text)
    tools = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    listed = httpx.post(stack.url, json=tools, headers=headers, timeout=30)
    assert listed.status_code == 200 and "remote.echo" in listed.text  # the session goes on
