"""Valid MCP requests (2026-07-28 stateless and 2025 sessions) with a few of their nodes replaced, on the
running gateway's `/mcp`: never a 5xx, always a JSON-RPC answer (a result or an error object with an integer
code) or an empty 202 for a notification, no traceback in the gateway's log, and the gateway still serves
(`/healthz`, a real tool call) afterwards.

`tests/protocols/test_mutation_fuzz.py` does this for the model APIs; here the bodies are JSON-RPC envelopes
for every method a client sends (initialize, tools/list, tools/call of a local and a remote tool, ping,
resources and prompts lists, notifications), and the headers the transport reads (`Mcp-Method`, `Mcp-Name`,
`MCP-Protocol-Version`, `Mcp-Session-Id`) are varied too. The same 300 bodies at every run; a wider search:
`OWSTACK_FUZZ_EXAMPLES=5000 pytest tests/mcp/test_mcp_fuzz.py`.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import httpx
from mcp_stack import McpStack

from protocols.test_mutation_fuzz import ODD, mutated

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
}
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}


def envelope(method: str, params: dict[str, Any] | None, request_id: Any = 7) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        body["id"] = request_id
    if params is not None:
        body["params"] = params
    return body


STATELESS = [
    envelope("tools/list", {"_meta": META}),
    envelope("tools/call", {"name": "remote.echo", "arguments": {"text": "hi"}, "_meta": META}),
    envelope("tools/call", {"name": "local.echo", "arguments": {"text": "hi"}, "_meta": {**META, "progressToken": 1}}),
    envelope("resources/list", {"_meta": META}),
    envelope("prompts/list", {"cursor": "x", "_meta": META}),
    envelope("ping", {"_meta": META}),
    envelope("notifications/cancelled", {"requestId": 7, "reason": "r"}, None),
]
SESSION = [
    envelope("initialize", INIT, 1),
    envelope("tools/list", {}),
    envelope("tools/call", {"name": "remote25.echo", "arguments": {"text": "hi"}}),
    envelope("tools/call", {"name": "local.echo", "arguments": {"text": "hi"}}),
    envelope("notifications/initialized", None, None),
    envelope("logging/setLevel", {"level": "debug"}),
]
HEADER_ODD = ["", "x", "tools/call", "2026-07-28", "2025-06-18", "1999-01-01", "remote.echo", "\u00e9", "a" * 3000]


def sendable(value: Any) -> bool:
    """A value an HTTP client can put in a header (the client refuses the others before sending)."""
    return isinstance(value, str) and value.isascii() and value.isprintable()


def headers_for(stack: McpStack, body: Any, version: str, rng: random.Random) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {stack.keys['acme']}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }
    if isinstance(body, dict) and sendable(body.get("method")) and version == "2026-07-28":
        headers["Mcp-Method"] = body["method"]
        params = body.get("params")
        if isinstance(params, dict) and sendable(params.get("name")):
            headers["Mcp-Name"] = params["name"]
    if rng.random() < 0.2:  # a header of the transport with an odd value, or missing
        name = rng.choice(["Mcp-Method", "Mcp-Name", "MCP-Protocol-Version", "Accept", "Content-Type"])
        value = rng.choice(HEADER_ODD)
        if rng.random() < 0.3:
            headers.pop(name, None)
        elif sendable(value):
            headers[name] = value
    return headers


def check(response: httpx.Response, body: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500], body)
    if response.status_code == 202 or not response.content:
        return
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/event-stream"):
        events = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        answers = [json.loads(e) for e in events if e]
    else:
        try:
            answers = [response.json()]
        except ValueError:
            raise AssertionError(("not JSON", response.status_code, response.text[:300], body)) from None
    for answer in answers:
        assert isinstance(answer, dict) and answer.get("jsonrpc") == "2.0", answer
        if "error" in answer:
            assert isinstance(answer["error"].get("code"), int) and answer["error"].get("message"), answer


def test_mutated_mcp_requests_get_json_rpc_answers(stack: McpStack) -> None:
    examples = int(os.environ.get("OWSTACK_FUZZ_EXAMPLES", "300"))
    rng = random.Random(None if "OWSTACK_FUZZ_EXAMPLES" in os.environ else 20261204)
    statuses: list[int] = []
    with httpx.Client(timeout=30) as client:
        init = client.post(stack.url, json=SESSION[0], headers=headers_for(stack, SESSION[0], "2025-06-18", rng))
        session = init.headers.get("mcp-session-id", "")
        for _ in range(examples):
            stateless = rng.random() < 0.6
            template = rng.choice(STATELESS if stateless else SESSION)
            body: Any = mutated(template, rng) if rng.random() < 0.85 else rng.choice(ODD)
            body.pop("stream", None) if isinstance(body, dict) else None  # `mutated` adds the model APIs' flag
            if rng.random() < 0.05:
                body = [body, body]  # a JSON-RPC batch (no longer in MCP: refused, never a crash)
            version = "2026-07-28" if stateless else "2025-06-18"
            headers = headers_for(stack, body, version, rng)
            if not stateless and session:
                headers["Mcp-Session-Id"] = session if rng.random() < 0.9 else rng.choice(HEADER_ODD[:3])
            r = client.post(stack.url, content=json.dumps(body).encode(), headers=headers)
            statuses.append(r.status_code)
            check(r, body)
        assert client.get(stack.gateway.url + "/healthz").status_code == 200
        good = STATELESS[1]
        echoed = client.post(stack.url, json=good, headers=headers_for(stack, good, "2026-07-28", random.Random(0)))
        assert echoed.status_code == 200 and echoed.json()["result"]["content"][0]["text"] == "hi", echoed.text
    assert "Traceback" not in stack.gateway.log()
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)
