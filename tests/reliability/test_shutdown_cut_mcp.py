"""MCP tool calls still running when the shutdown grace ends are cut honestly, as `/v1` requests are
(test_shutdown_cut.py): a real `owstack serve` (SQLite ledger, audit on) in front of a real stdio MCP server
(tests/mcp/upstream_server.py, the official SDK's) whose `slow` tool takes 60 s, with a 2-second grace.

Four calls are in flight at SIGTERM, one on each of the gateway's ways of serving a call: the lean edge and
the SDK's server (a call with a progress token), each on the stateless 2026-07-28 revision and on a 2025
session. Every one is answered with the JSON-RPC error -32068 (`data.code` `shutdown`): a 503 before the
answer started, else the last event of its SSE stream; every one has a ledger row with status 503; and no
traceback is logged. The same after a SIGHUP reload, whose retired configuration cuts its calls at the end of
its grace, and the process serves on. Before: the lean edge's calls got uvicorn's plain-text 500 and were recorded as
`cancelled` (499), and a 2025 session's SDK call was recorded as whatever its upstream's closing made of it."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson

from procs import ROOT, Proc, run_gateway, wait_for
from reliability.conftest import ledger_statuses

SERVER = str(ROOT / "tests" / "mcp" / "upstream_server.py")
MODERN = "2026-07-28"
SESSION = "2025-06-18"
ACCEPT = {"Accept": "application/json, text/event-stream"}
SLOW = {"name": "local.slow", "arguments": {"steps": 1, "delay": 60}}


def config(tmp: Path, url: str) -> dict[str, Any]:
    state = tmp / "upstream"
    state.mkdir(exist_ok=True)
    return {
        "storage": {"url": url},
        "metering": {"enabled": True},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "mcp": {"servers": {"local": {"command": [sys.executable, SERVER, "stdio", str(state)]}}},
        "server": {"shutdown_grace_s": 2, "drain_delay_s": 0},
    }


def modern(request_id: str, sdk: bool) -> tuple[dict[str, Any], dict[str, str]]:
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "cut", "version": "1"},
    }
    if sdk:
        meta["progressToken"] = f"p-{request_id}"
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {**SLOW, "_meta": meta}}
    headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "local.slow"}
    return body, headers


def session(gw: Proc, request_id: str, sdk: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """A 2025 session opened over plain HTTP, and the call to make on it."""
    params = {"protocolVersion": SESSION, "capabilities": {}, "clientInfo": {"name": "cut", "version": "1"}}
    r = httpx.post(gw.url + "/mcp", json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
                   headers=ACCEPT, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    headers = {**ACCEPT, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": SESSION}
    r = httpx.post(gw.url + "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers=headers, timeout=30)  # fmt: skip
    assert r.status_code == 202, r.text
    call: dict[str, Any] = dict(SLOW)
    if sdk:
        call["_meta"] = {"progressToken": f"p-{request_id}"}
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call}, headers


def answer(r: httpx.Response) -> dict[str, Any] | None:
    """The JSON-RPC message answering the call: the JSON body, or the last answer in an SSE stream."""
    if r.headers.get("content-type", "").startswith("application/json"):
        return dict(orjson.loads(r.content))
    found = None
    for line in r.text.splitlines():
        if line.startswith("data:") and line[5:].strip():
            message = orjson.loads(line[5:])
            if "result" in message or "error" in message:
                found = dict(message)
    return found


def calls(tmp: Path) -> int:
    log = tmp / "upstream" / "calls.log"
    return log.read_text().split().count("slow") if log.exists() else 0


WAYS = {"modern-lean": (False, False), "modern-sdk": (False, True), "session-lean": (True, False),
        "session-sdk": (True, True)}  # fmt: skip


def in_flight(gw: Proc, tmp: Path) -> tuple[list[threading.Thread], dict[str, dict[str, Any]]]:
    """One slow call each way, sent on threads; returns once the upstream has them all."""
    out: dict[str, dict[str, Any]] = {way: {} for way in WAYS}
    before = calls(tmp)

    def call(way: str, on_session: bool, sdk: bool) -> None:
        request_id = f"cut-{way}"
        body, headers = session(gw, request_id, sdk) if on_session else modern(request_id, sdk)
        try:
            r = httpx.post(gw.url + "/mcp", json=body, headers={**headers, "x-request-id": request_id}, timeout=60)
            out[way].update(status=r.status_code, answer=answer(r), text=r.text[:300])
        except Exception as exc:  # a broken answer (a cut chunked encoding, a reset): reported below
            out[way]["error"] = repr(exc)

    threads = [threading.Thread(target=call, args=(way, *how)) for way, how in WAYS.items()]
    for thread in threads:
        thread.start()
    wait_for(lambda: calls(tmp) >= before + len(WAYS), "the upstream has every call", timeout=60)
    return threads, out


def assert_cut(out: dict[str, dict[str, Any]]) -> None:
    for way, got in out.items():
        assert "error" not in got, (way, got)
        assert got["answer"] is not None, (way, got)
        error = got["answer"].get("error")
        assert error is not None and error["code"] == -32068, (way, got)
        assert error["data"] == {"code": "shutdown", "status": 503}, (way, got)
        assert got["answer"]["id"] == 7, (way, got)
        assert got["status"] in (200, 503), (way, got)  # 503, or the SSE stream (200) the answer had started
    assert out["modern-lean"]["status"] == 503 and out["session-lean"]["status"] == 503, out


def test_sigterm_cuts_mcp_calls_past_the_grace_on_every_path(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    with run_gateway(tmp_path, config(tmp_path, url)) as gw:
        threads, out = in_flight(gw, tmp_path)
        gw.proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(60)
        gw.proc.wait(60)
        log = gw.log()
    assert_cut(out)
    rows = ledger_statuses(url)
    assert {way: rows.get(f"cut-{way}") for way in WAYS} == {way: 503 for way in WAYS}
    assert "Traceback" not in log, log


def test_a_reload_cuts_the_old_configurations_mcp_calls_and_serves_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'owstack.db'}"
    with run_gateway(tmp_path, config(tmp_path, url)) as gw:
        threads, out = in_flight(gw, tmp_path)
        gw.proc.send_signal(signal.SIGHUP)  # the same file: a new gateway all the same, with its own upstream
        wait_for(lambda: "configuration reloaded" in gw.log(), "the new configuration serves")
        for thread in threads:
            thread.join(60)
        assert_cut(out)
        body, headers = modern("after", sdk=False)
        body["params"] = {**body["params"], "name": "local.echo", "arguments": {"text": "still here"}}
        r = httpx.post(gw.url + "/mcp", json=body, headers={**headers, "Mcp-Name": "local.echo"}, timeout=30)
        assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "still here", r.text
        assert gw.proc.poll() is None
        log = gw.log()
    rows = ledger_statuses(url)
    assert {way: rows.get(f"cut-{way}") for way in WAYS} == {way: 503 for way in WAYS}
    assert "Traceback" not in log, log
