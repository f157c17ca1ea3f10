"""Hostile `/mcp` traffic against a real gateway (`owstack serve`, audit log and SQLite ledger on) in front of a
real stdio MCP server (tests/mcp/upstream_server.py, the official SDK's), as test_fuzz.py does for `/v1`.

`fuzz.mcp_requests` builds requests from a seed on every way of calling: a tools/call on the lean edge and on
the SDK's server (a progress token), and a tools/list, each on the stateless 2026-07-28 revision and on a 2025
session opened over plain HTTP. Kinds: JSON nested 62 to 5,000 levels (in the arguments, `_meta`, the id,
params, the name, the whole body), numbers past 64 bits and any double, NaN, invalid UTF-8 and lone
surrogates, huge strings, wrong JSON-RPC shapes (batches, `jsonrpc` missing or odd, ids of every kind, params
not an object, unknown methods, notifications with ids), wrong types for name, arguments, cursor, `_meta` and
the progress token, garbled, missing or disagreeing transport headers (`Mcp-Session-Id`,
`MCP-Protocol-Version`, `Mcp-Name`, `Mcp-Method`, `Accept`, `Content-Type`), mangled bytes. For each: no 5xx
but an honest 503, every error a JSON-RPC error object; then no traceback in the log, the gateway alive and
serving a plain call, and every tool call answered with a result in the ledger.

Hostile upstream results too (the upstream's `raw` tool writes the result it is given to the wire as it is):
a result that is not valid MCP or that owstack cannot write is the upstream's failure (-32063,
`upstream_invalid_result`), a line the SDK's client cannot read waits out the call's timeout (-32064); never a
-32603 from a crash, never a traceback.
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from procs import ROOT, Proc, run_gateway, wait_for
from reliability.conftest import ledger_statuses
from reliability.fuzz import MCP_CALL, MCP_LIST, mcp_requests

sys.path.insert(0, str(ROOT / "tests" / "mcp"))
from upstream_tools import DEFAULT_TOOLS

SERVER = str(ROOT / "tests" / "mcp" / "upstream_server.py")
MODERN, SESSION = "2026-07-28", "2025-06-18"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
}
RAW = {"name": "raw", "description": "Answer with the given result.",
       "inputSchema": {"type": "object", "properties": {"result": {"type": "string"}}}}  # fmt: skip
#: how long a call may take upstream (a result the SDK's client cannot read waits this long)
CALL_TIMEOUT_S = 3
SEED, N = 20261205, 640


@dataclass
class Gateway:
    proc: Proc
    url: str
    ledger: str


def config(tmp: Path, url: str) -> dict[str, Any]:
    state = tmp / "upstream"
    state.mkdir(exist_ok=True)
    (state / "tools.json").write_text(json.dumps([*DEFAULT_TOOLS, RAW]))
    return {
        "storage": {"url": url},
        "metering": {"enabled": True},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "mcp": {
            "servers": {"local": {"command": [sys.executable, SERVER, "stdio", str(state)]}},
            "call_timeout_s": CALL_TIMEOUT_S,
        },
    }


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("fuzz_mcp")
    url = f"sqlite:///{tmp / 'owstack.db'}"
    with run_gateway(tmp, config(tmp, url)) as gw:
        yield Gateway(gw, gw.url + "/mcp", url)


# the ways of calling -----------------------------------------------------------------------------------------
def open_session(url: str) -> dict[str, str]:
    """A 2025 session over plain HTTP (initialize, initialized): the headers its requests carry."""
    params = {"protocolVersion": SESSION, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}
    r = httpx.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
                   headers=ACCEPT, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    headers = {**ACCEPT, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": SESSION}
    r = httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    return headers


def ways(url: str) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """way -> (a valid body, its headers): tools/call on the lean edge and the SDK's server, tools/list, each
    on 2026-07-28 and on a 2025 session."""
    session = open_session(url)
    out: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    for revision in ("modern", "session"):
        for name, base in (("lean", MCP_CALL), ("sdk", MCP_CALL), ("list", MCP_LIST)):
            body = json.loads(json.dumps(base))
            meta: dict[str, Any] = dict(META) if revision == "modern" else {}
            if name == "sdk":
                meta["progressToken"] = "p"
            if meta:
                body["params"]["_meta"] = meta
            if revision == "modern":
                method = str(body["method"])
                headers = {**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
                if method == "tools/call":
                    headers["Mcp-Name"] = "local.echo"
            else:
                headers = dict(session)
            out[f"{revision}-{name}"] = (body, headers)
    return out


# judging answers ---------------------------------------------------------------------------------------------
def messages(r: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of an answer: its JSON body (a list for a batch), or its SSE events' data."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        return [orjson.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    doc = orjson.loads(r.content)
    return doc if isinstance(doc, list) else [doc]


#: the gateway's own refusals before `/mcp`'s handler: the open-mode rule against cross-origin forms
#: (`api/browser.py`: a POST not declared JSON, 415; a Host not the gateway's, 403) and a method the route does
#: not take (405)
GATEWAY_CODES = {415: "unsupported_media_type", 403: "host_not_allowed", 405: "method_not_allowed"}


def clean(log: str) -> bool:
    """No traceback, and no request uvicorn had to answer itself (an app that returned without answering)."""
    return "Traceback" not in log and "returned without starting response" not in log


def problem(r: httpx.Response) -> str | None:
    """Why the answer is wrong (None when it is fine): a 5xx other than an honest 503, a body that is not
    JSON-RPC, an error that is not an error object, an internal error (-32603: something inside crashed)."""
    if r.status_code == 202 and not r.content:
        return None  # a notification taken
    try:
        found = messages(r)
    except orjson.JSONDecodeError:
        return "not JSON"
    for message in found:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return "not a JSON-RPC message"
        error = message.get("error")
        if "result" not in message and "method" not in message and error is None:
            return "neither result nor error"
        if error is not None and (
            not isinstance(error, dict)
            or type(error.get("code")) is not int
            or not isinstance(error.get("message"), str)
        ):
            return "not an error object"
        if error is not None and error["code"] == -32603:
            return "an internal error (a crash inside)"
        if r.status_code >= 500 and (r.status_code != 503 or (error or {}).get("data", {}).get("status") != 503):
            return "a 5xx"
    if r.status_code >= 400 and not any(isinstance(m, dict) and "error" in m for m in found):
        return "a refusal without an error"
    return None


def answered_call(body: bytes, r: httpx.Response) -> bool:
    """A tools/call answered with a result (the call then has a ledger row)."""
    try:
        sent = orjson.loads(body)
        found = messages(r)
    except orjson.JSONDecodeError:
        return False
    return (
        isinstance(sent, dict)
        and sent.get("method") == "tools/call"
        and any(isinstance(m, dict) and "result" in m and m.get("id") == sent.get("id") for m in found)
    )


@dataclass
class Report:
    requests: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    bad: list[str] = field(default_factory=list)
    #: request ids of the tool calls answered with a result
    answered: set[str] = field(default_factory=set)


def fuzz(url: str, seed: int, n: int, prefix: str) -> Report:
    """Send `n` hostile requests (fuzz.mcp_requests) to the gateway's `/mcp` and judge each answer."""
    bases = ways(url)
    report = Report()
    with httpx.Client(timeout=60) as http:
        for i, (kind, way, body, changes) in enumerate(mcp_requests({w: b for w, (b, _) in bases.items()}, seed, n)):
            request_id = f"{prefix}-{i:05d}"
            headers = {**bases[way][1], "x-request-id": request_id}
            for name, value in changes.items():
                headers.pop(name, None)
                if value is not None:
                    headers[name] = value
            try:
                r = http.post(url, content=body, headers={k: v.encode("latin-1") for k, v in headers.items()})
            except httpx.HTTPError as exc:
                report.bad.append(f"{kind}/{way}: {exc!r}")
                continue
            report.requests += 1
            report.statuses[str(r.status_code)] += 1
            report.kinds[f"{kind} {r.status_code}"] += 1
            why = problem(r)
            if why is not None:
                report.bad.append(f"{kind}/{way} {changes}: {why}: {r.status_code} {r.text[:200]} <- {body[:160]!r}")
            elif r.status_code == 200 and answered_call(body, r):
                report.answered.add(request_id)
    return report


def ledger_rows(url: str, ids: set[str]) -> dict[str, int]:
    """The ledger's rows once every one of `ids` is there (the writer files them in batches), or as they are
    after 30 s (the test then names the missing ones)."""
    found: dict[str, int] = {}

    def complete() -> bool:
        found.update(ledger_statuses(url))
        return ids <= found.keys()

    with contextlib.suppress(AssertionError):
        wait_for(complete, "the ledger rows", timeout=30)
    return found


def echo(url: str, text: str) -> httpx.Response:
    body, headers = ways(url)["modern-lean"]
    body["params"]["arguments"] = {"text": text}
    return httpx.post(url, json=body, headers=headers, timeout=30)


# the tests -----------------------------------------------------------------------------------------------------
def nest(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [65, 300, 5000])
def test_bodies_nested_past_the_limit_are_refused_on_every_path(gateway: Gateway, depth: int) -> None:
    """Nested past 64 levels (`protocols.body.MAX_DEPTH`, as `/v1`): a JSON-RPC invalid request (-32600, HTTP
    400, `too_deep`), on the lean edge and the SDK's path, 2026-07-28 and a session. Before, ~300 levels were a
    -32603 and a traceback (the audit record's `TypeError: Recursion limit reached`) and no record."""
    deep = '{"a":' * (depth // 2) + "[" * (depth - depth // 2) + "1" + "]" * (depth - depth // 2) + "}" * (depth // 2)
    for way, (body, headers) in ways(gateway.url).items():
        for where in ("arguments", "_meta", "params"):
            sent = json.loads(json.dumps(body))
            if where == "params":
                sent["params"]["deep"] = "MARK"
            elif where == "_meta":
                sent["params"].setdefault("_meta", {})["deep"] = "MARK"
            else:
                sent["params"]["arguments"] = {"text": "hi", "deep": "MARK"}
            raw = json.dumps(sent).replace('"MARK"', deep).encode()
            r = httpx.post(gateway.url, content=raw, headers=headers, timeout=30)
            assert r.status_code == 400, (way, where, r.status_code, r.text[:300])
            error = r.json()["error"]
            assert error["code"] == -32600 and error["data"] == {"code": "too_deep", "status": 400}, (way, r.text)
            assert "64 levels" in error["message"], r.text
            assert r.json()["id"] == (1 if depth < 1024 else None), r.text  # orjson reads no deeper than 1,024
    flat = ways(gateway.url)["modern-lean"]
    flat[0]["params"]["arguments"] = {"text": "deep enough", "deep": nest(60)}  # within the limit: served
    r = httpx.post(gateway.url, json=flat[0], headers=flat[1], timeout=30)
    assert r.json()["result"]["content"][0]["text"] == "deep enough", r.text
    assert clean(gateway.proc.log()), gateway.proc.log()[-3000:]


def _raw_call(gateway: Gateway, way: str, result: str, request_id: str) -> httpx.Response:
    body, headers = ways(gateway.url)[way]
    body["params"]["name"] = "local.raw"
    body["params"]["arguments"] = {"result": result}
    if "Mcp-Name" in headers:
        headers["Mcp-Name"] = "local.raw"
    return httpx.post(gateway.url, json=body, headers={**headers, "x-request-id": request_id}, timeout=60)


def _rid(name: str, way: str) -> str:
    return f"raw-{name.replace(' ', '-')}-{way}"


def _deep_result(depth: int) -> str:
    return '{"resultType":"complete","content":[],"structuredContent":{"a":' + "[" * depth + "1" + "]" * depth + "}}"


#: upstream results: name -> (the result's JSON text, the JSON-RPC error code expected, its data.code)
RESULTS = {
    "integer past 64 bits": ('{"resultType":"complete","content":[],"structuredContent":{"n":' + str(2**70) + "}}",
                             -32063, "upstream_invalid_result"),
    "no resultType": ('{"content":[{"type":"text","text":"x"}]}', -32063, "upstream_invalid_result"),
    "content a string": ('{"resultType":"complete","content":"x"}', -32063, "upstream_invalid_result"),
    "nested 300 deep": (_deep_result(300), -32064, "upstream_timeout"),
    "a lone surrogate": ('{"resultType":"complete","content":[{"type":"text","text":"a\\ud800"}]}', -32064,
                         "upstream_timeout"),
    "not an object": ("[1, 2]", -32064, "upstream_timeout"),
}  # fmt: skip


def test_hostile_upstream_results_are_the_upstreams_failure(gateway: Gateway) -> None:
    """What the upstream answers a tool call with, however broken, is answered as its failure and recorded: a
    result that is not valid MCP or that owstack cannot write is -32063 `upstream_invalid_result` (recorded
    502), a line the SDK's client cannot read waits out the call's timeout (-32064); before, the first were a
    -32603 with a traceback on the lean edge and a -32602 "Invalid request parameters" (HTTP 400) on the SDK's
    path, and every unreadable line a traceback from the SDK's client."""
    cases = [(name, way) for name in RESULTS for way in ("modern-lean", "modern-sdk", "session-lean")]
    with ThreadPoolExecutor(len(cases)) as pool:  # the ones that time out, side by side
        answers = list(pool.map(lambda c: _raw_call(gateway, c[1], RESULTS[c[0]][0], _rid(*c)), cases))
    for (name, way), r in zip(cases, answers, strict=True):
        assert r.status_code == 200, (name, way, r.status_code, r.text[:300])
        found = [m for m in messages(r) if "result" in m or "error" in m]
        assert len(found) == 1 and "error" in found[0], (name, way, r.text[:300])
        error, (_, code, data_code) = found[0]["error"], RESULTS[name]
        assert (error["code"], error["data"]["code"]) == (code, data_code), (name, way, error)
    rows = ledger_rows(gateway.ledger, {_rid(*c) for c in cases})
    for (name, way), _ in zip(cases, answers, strict=True):
        status = 504 if RESULTS[name][1] == -32064 else 502
        assert rows.get(_rid(name, way)) == status, (name, way, rows.get(_rid(name, way)))
    assert echo(gateway.url, "after").json()["result"]["content"][0]["text"] == "after"
    assert clean(gateway.proc.log()), gateway.proc.log()[-3000:]


def test_hostile_mcp_traffic_gets_json_rpc_errors_and_nothing_breaks(gateway: Gateway) -> None:
    report = fuzz(gateway.url, SEED, N, "fz")
    assert not report.bad, "\n".join(report.bad[:10])
    assert report.requests == N
    assert sum(v for k, v in report.statuses.items() if k.startswith("4")) > N // 3, report.statuses
    assert len(report.answered) > N // 20, report.statuses  # the valid ones are served
    r = echo(gateway.url, "still here")
    assert r.status_code == 200 and r.json()["result"]["content"][0]["text"] == "still here", r.text
    assert gateway.proc.proc.poll() is None
    log = gateway.proc.log()
    assert clean(log), log[-5000:]
    rows = ledger_rows(gateway.ledger, report.answered)
    lost = report.answered - set(rows)
    assert not lost, f"{len(lost)} of {len(report.answered)} answered tool calls have no ledger row: {sorted(lost)[:5]}"


def test_other_verbs_and_hostile_headers_get_json_rpc_answers(gateway: Gateway) -> None:
    """GET (the SSE stream), DELETE (the session's end) and methods `/mcp` does not take, with garbled, missing
    and odd transport headers: no 5xx, a JSON-RPC answer or a stream. A GET resuming a stream after an event
    (`Last-Event-ID`) on a session was uvicorn's plain-text 500 (the SDK's transport, asked to replay with no
    event store, returned without answering); it opens a fresh stream now."""
    session = open_session(gateway.url)
    sid = session["Mcp-Session-Id"]
    variants: list[dict[str, str]] = [
        {}, {"Mcp-Session-Id": sid}, {"Mcp-Session-Id": "garbage"}, {"Mcp-Session-Id": "x" * 5000},
        {"Mcp-Session-Id": sid, "Last-Event-ID": "x"}, {"Mcp-Session-Id": sid, "Last-Event-ID": "9" * 400},
        {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2099-01-01"}, {"MCP-Protocol-Version": MODERN},
        {"Mcp-Session-Id": sid, "MCP-Protocol-Version": SESSION, "Accept": "text/html"},
        {"Authorization": "Bearer garbage"}, {"Host": "evil.example"}, {"Origin": "http://evil.example"},
    ]  # fmt: skip
    bad = []
    for verb in ("GET", "PUT", "PATCH", "OPTIONS", "HEAD", "DELETE"):
        for extra in variants:
            headers = {"Accept": "text/event-stream, application/json", **extra}
            with httpx.stream(verb, gateway.url, headers=headers, timeout=30) as r:
                if r.headers.get("content-type", "").startswith("text/event-stream") and r.status_code == 200:
                    continue  # the session's stream, open: leave it
                r.read()
            if r.status_code >= 500 or (verb != "HEAD" and problem(r) is not None and r.status_code != 200):
                bad.append(f"{verb} {extra}: {r.status_code} {r.text[:200]}")
    assert not bad, "\n".join(bad[:10])
    with httpx.stream("GET", gateway.url, headers={**session, "Last-Event-ID": "x"}, timeout=30) as r:
        assert r.status_code in (200, 404), r.status_code  # the stream, or the session DELETEd above
    assert echo(gateway.url, "after verbs").json()["result"]["content"][0]["text"] == "after verbs"
    assert clean(gateway.proc.log()), gateway.proc.log()[-3000:]


def test_a_get_resuming_a_stream_on_a_session_opens_a_fresh_one(gateway: Gateway) -> None:
    session = open_session(gateway.url)
    headers = {**session, "Accept": "text/event-stream", "Last-Event-ID": "0"}
    with httpx.stream("GET", gateway.url, headers=headers, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.status_code
    assert clean(gateway.proc.log()), gateway.proc.log()[-3000:]


@pytest.mark.parametrize("case", ["content-type", "method", "host"])
def test_gateway_refusals_on_mcp_are_json_rpc(gateway: Gateway, case: str) -> None:
    body, headers = ways(gateway.url)["modern-lean"]
    if case == "content-type":
        r = httpx.post(gateway.url, json=body, headers={**headers, "Content-Type": "text/plain"}, timeout=30)
    elif case == "method":
        r = httpx.put(gateway.url, json=body, headers=headers, timeout=30)
    else:
        r = httpx.post(gateway.url, json=body, headers={**headers, "Host": "evil.example"}, timeout=30)
    assert r.status_code in GATEWAY_CODES
    error = r.json()["error"]  # JSON-RPC's shape, owstack's code in `data` (was OpenAI's error shape)
    assert r.json()["jsonrpc"] == "2.0" and error["code"] == -32600, r.text
    assert error["data"] == {"code": GATEWAY_CODES[r.status_code], "status": r.status_code}, r.text
