"""A recording stand-in for the OpenAI Responses and Anthropic Messages APIs, to capture what real clients send.

Run it as a process: `python tests/fakes/recorder.py PORT LOG.jsonl [SCRIPT.json]` (uvicorn, raw ASGI). Every request is
appended to LOG.jsonl as one JSON object (method, path, query, headers with credentials redacted, JSON body),
and answered just well enough for the client to go on: the point is to see a real agent CLI's whole
conversation (model list, token counting, a first turn, a tool call, the turn that carries the tool's output)
without a real model behind it. The answers follow tests/fakes/agent_script.py (or SCRIPT.json): tool calls to
the client's own shell tool first, then a final message quoting the tool's output.

    GET  /health                     200
    GET  /v1/models                  one model, in a shape both the OpenAI and the Anthropic clients accept
    POST /v1/responses               a Responses API answer, streamed (SSE events in the documented order) or not
    POST /v1/messages                an Anthropic Messages answer, streamed or not
    POST /v1/messages/count_tokens   {"input_tokens": N}
    anything else                    404 in the OpenAI error shape (still recorded)

The recorder never looks at credentials and never writes them down.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from agent_script import Reply, decide, from_anthropic, from_responses, load_rules

SECRET_HEADERS = {"authorization", "x-api-key", "cookie", "proxy-authorization", "api-key"}
LOG: dict[str, Path | None] = {"path": None}
RULES: list[dict[str, Any]] = load_rules(None)
MODEL = "scripted"


def _record(scope: dict[str, Any], raw: bytes) -> None:
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        name = key.decode("latin-1").lower()
        headers[name] = "<redacted>" if name in SECRET_HEADERS else value.decode("latin-1")
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = {"<unparsed>": raw[:2000].decode("utf-8", "replace")}
    entry = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope.get("query_string", b"").decode("latin-1"),
        "headers": headers,
        "body": body,
    }
    path = LOG["path"]
    if path is not None:
        with path.open("a") as f:
            f.write(json.dumps(entry) + "\n")


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Any, status: int, obj: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(obj).encode()})


async def _sse(send: Any, events: list[tuple[str, dict[str, Any]]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for name, data in events:
        frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _models() -> dict[str, Any]:
    model = {
        "id": MODEL,
        "object": "model",
        "type": "model",
        "created": 1767225600,
        "created_at": "2026-01-01T00:00:00Z",
        "display_name": MODEL,
        "owned_by": "recorder",
    }
    return {"object": "list", "data": [model], "has_more": False, "first_id": MODEL, "last_id": MODEL}


# --- the Responses API -------------------------------------------------------------------------------------------


def _response_item(reply: Reply, item_id: str) -> dict[str, Any]:
    if reply.tool_name is not None:
        return {
            "type": "function_call",
            "id": item_id,
            "call_id": "call_" + item_id,
            "name": reply.tool_name,
            "arguments": json.dumps(reply.tool_arguments),
            "status": "completed",
        }
    part = {"type": "output_text", "text": reply.text, "annotations": []}
    return {"type": "message", "id": item_id, "role": "assistant", "status": "completed", "content": [part]}


def _response(body: dict[str, Any], reply: Reply, rid: str, item: dict[str, Any], status: str) -> dict[str, Any]:
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 55,
    }
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model", MODEL),
        "output": [item] if status == "completed" else [],
        "usage": usage if status == "completed" else None,
        "parallel_tool_calls": False,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "text": {"format": {"type": "text"}},
    }


def responses_events(body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    """The documented event order for one output item (a message or a function call), with one item id."""
    rid, item_id = "resp_" + uuid.uuid4().hex[:24], uuid.uuid4().hex[:24]
    item = _response_item(reply, ("fc_" if reply.tool_name else "msg_") + item_id)
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(body, reply, rid, item, "in_progress")}),
        ("response.in_progress", {"response": _response(body, reply, rid, item, "in_progress")}),
    ]
    added = {**item, "status": "in_progress"}
    if item["type"] == "message":
        added["content"] = []
    else:
        added["arguments"] = ""
    events.append(("response.output_item.added", {"output_index": 0, "item": added}))
    where = {"item_id": item["id"], "output_index": 0}
    if item["type"] == "message":
        empty = {"type": "output_text", "text": "", "annotations": []}
        events.append(("response.content_part.added", {**where, "content_index": 0, "part": empty}))
        events.append(("response.output_text.delta", {**where, "content_index": 0, "delta": reply.text}))
        events.append(("response.output_text.done", {**where, "content_index": 0, "text": reply.text}))
        events.append(("response.content_part.done", {**where, "content_index": 0, "part": item["content"][0]}))
    else:
        events.append(("response.function_call_arguments.delta", {**where, "delta": item["arguments"]}))
        events.append(("response.function_call_arguments.done", {**where, "arguments": item["arguments"]}))
    events.append(("response.output_item.done", {"output_index": 0, "item": item}))
    events.append(("response.completed", {"response": _response(body, reply, rid, item, "completed")}))
    for seq, (name, data) in enumerate(events):
        data["type"], data["sequence_number"] = name, seq
    return events


# --- Anthropic Messages ------------------------------------------------------------------------------------------


def _anthropic_block(reply: Reply) -> dict[str, Any]:
    if reply.tool_name is not None:
        tid = "toolu_" + uuid.uuid4().hex[:24]
        return {"type": "tool_use", "id": tid, "name": reply.tool_name, "input": reply.tool_arguments}
    return {"type": "text", "text": reply.text}


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    block = _anthropic_block(reply)
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": [block],
        "stop_reason": "tool_use" if block["type"] == "tool_use" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 5},
    }


def anthropic_events(body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    message = anthropic_message(body, reply)
    block = message["content"][0]
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 50, "output_tokens": 1}}
    if block["type"] == "tool_use":
        opened, delta = {**block, "input": {}}, {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    else:
        opened, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": start}),
        ("content_block_start", {"index": 0, "content_block": opened}),
        ("content_block_delta", {"index": 0, "delta": delta}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": stop, "usage": {"output_tokens": 5}}),
        ("message_stop", {}),
    ]
    for name, data in events:
        data["type"] = name
    return events


# --- the app -----------------------------------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    raw = await _read(receive)
    path, method = scope["path"], scope["method"]
    if path == "/health":
        await _json(send, 200, {"ok": True})
        return
    _record(scope, raw)
    body = json.loads(raw) if raw.strip().startswith(b"{") else {}
    if path == "/v1/models" and method == "GET":
        await _json(send, 200, _models())
    elif path == "/v1/responses" and method == "POST":
        reply = decide(from_responses(body), RULES)
        if body.get("stream"):
            await _sse(send, responses_events(body, reply))
        else:
            events = responses_events(body, reply)
            await _json(send, 200, events[-1][1]["response"])
    elif path == "/v1/messages/count_tokens" and method == "POST":
        await _json(send, 200, {"input_tokens": max(1, len(raw) // 4)})
    elif path == "/v1/messages" and method == "POST":
        reply = decide(from_anthropic(body), RULES)
        if body.get("stream"):
            await _sse(send, anthropic_events(body, reply))
        else:
            await _json(send, 200, anthropic_message(body, reply))
    else:
        await _json(send, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})


if __name__ == "__main__":
    import uvicorn

    LOG["path"] = Path(sys.argv[2])
    RULES[:] = load_rules(sys.argv[3] if len(sys.argv) > 3 else None)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
