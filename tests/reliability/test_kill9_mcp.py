"""kill -9 loses no ledger row of an answered MCP tool call, as for `/v1` requests (test_kill9_ledger.py): a
real gateway with a real stdio MCP server upstream (tests/mcp/upstream_server.py, the official `mcp` SDK's
server), eight clients calling its tool on both of the gateway's paths (the lean edge, and the SDK's server
for a call with a progress token), the gateway killed with SIGKILL mid-stream, on SQLite and PostgreSQL.
Every call answered with a result must be in the ledger once the next gateway has started (and read back the
calls' ledger records from the dead one's audit records, which carry them) and stopped."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from procs import ROOT, run_gateway
from reliability.conftest import ledger_ids
from reliability.load import Load

SERVER = str(ROOT / "tests" / "mcp" / "upstream_server.py")
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "kill9", "version": "1"},
}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
           "Mcp-Method": "tools/call", "Mcp-Name": "local.echo"}  # fmt: skip


class McpLoad(Load):
    """`Load` with 2026-07-28 `tools/call`s on `/mcp` instead of chat completions: a call is acknowledged when
    its answer carries the result; every other call goes to the SDK's server (a progress token)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.paths = {"lean": 0, "sdk": 0}

    def _one(self, http: httpx.Client, request_id: str) -> str:
        sdk = int(request_id.rsplit("-", 1)[1]) % 2 == 0
        meta = {**META, "progressToken": f"p-{request_id}"} if sdk else META
        params = {"name": "local.echo", "arguments": {"text": request_id}, "_meta": meta}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        try:
            r = http.post("/mcp", json=body, headers={**HEADERS, "x-request-id": request_id})
        except httpx.HTTPError:
            return "error"
        if r.status_code != 200:
            return str(r.status_code)
        answer = _answer(r)
        if answer is None or "result" not in answer:
            return "mcp_error" if answer is not None else "incomplete"
        if answer["result"]["content"][0]["text"] != request_id:
            return "wrong_answer"
        with self._lock:
            self.paths["sdk" if sdk else "lean"] += 1
        return "200"


def _answer(r: httpx.Response) -> dict[str, Any] | None:
    """The JSON-RPC response in a JSON body or an SSE stream (the SDK streams a call with a progress token)."""
    if r.headers.get("content-type", "").startswith("application/json"):
        found: dict[str, Any] = orjson.loads(r.content)
        return found
    for line in r.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            message = orjson.loads(line[5:])
            if "result" in message or "error" in message:
                return dict(message)
    return None  # the stream ended without the response (the gateway died mid-answer): not acknowledged


def config(tmp: Path, url: str) -> dict[str, Any]:
    state = tmp / "upstream"
    state.mkdir(exist_ok=True)
    return {
        "storage": {"url": url},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "mcp": {"servers": {"local": {"command": [sys.executable, SERVER, "stdio", str(state)]}}},
    }


def test_kill_9_loses_no_answered_tool_call(ledger_url: str, tmp_path: Path) -> None:
    cfg = config(tmp_path, ledger_url)
    with run_gateway(tmp_path, cfg) as gw, McpLoad(gw.url, concurrency=8, prefix="k9mcp") as load:
        assert load.wait_for(150, timeout=60), load.outcomes
        os.kill(gw.proc.pid, signal.SIGKILL)
        gw.proc.wait(30)
    answered = set(load.acknowledged)
    assert load.paths["lean"] and load.paths["sdk"], load.paths  # both paths were answered and killed under
    with run_gateway(tmp_path, cfg):  # the next start reads back what the dead gateway's audit records held
        pass  # stopped gracefully: its writer flushes into the database
    recorded = ledger_ids(ledger_url)
    lost = answered - recorded
    assert not lost, f"{len(lost)} of {len(answered)} answered tool calls have no ledger row: {sorted(lost)[:5]}"
    assert load.outcomes["200"] == len(answered)
