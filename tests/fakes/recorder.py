"""A recording stand-in for the OpenAI Responses and Anthropic Messages APIs, to capture what real clients send.

Run it as a process: `python tests/fakes/recorder.py PORT LOG.jsonl [SCRIPT.json] [--reasoning]` (uvicorn, raw
ASGI); with --reasoning every answer starts with a reasoning item (Responses, with `encrypted_content`) or a
signed thinking block (Messages), to see how a client sends those back. Every request is
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
MODE = {"reasoning": False}  # --reasoning: every answer starts with a reasoning item / a signed thinking block
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


THOUGHT = "The user wants a file written and read back; the shell tool does both."
OPAQUE = "b3dzdGFjay1yZWNvcmRlci1vcGFxdWUtcmVhc29uaW5n"  # stands in for encrypted reasoning / a signature


def _hex() -> str:
    return uuid.uuid4().hex[:24]


def _response_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if MODE["reasoning"]:
        summary = [{"type": "summary_text", "text": THOUGHT}]
        items.append({"type": "reasoning", "id": "rs_" + _hex(), "summary": summary, "encrypted_content": OPAQUE})
    if reply.tool_name is not None:
        fc = "fc_" + _hex()
        args = json.dumps(reply.tool_arguments)
        call = {"type": "function_call", "id": fc, "call_id": "call_" + fc, "name": reply.tool_name, "arguments": args}
        items.append({**call, "status": "completed"})
    else:
        part = {"type": "output_text", "text": reply.text, "annotations": []}
        items.append(
            {"type": "message", "id": "msg_" + _hex(), "role": "assistant", "status": "completed", "content": [part]}
        )
    return items


def _response(body: dict[str, Any], rid: str, items: list[dict[str, Any]], status: str) -> dict[str, Any]:
    reasoning = len(THOUGHT) // 4 if MODE["reasoning"] else 0
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5 + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": 55 + reasoning,
    }
    done = status == "completed"
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model", MODEL),
        "output": items if done else [],
        "usage": usage if done else None,
        "parallel_tool_calls": False,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "text": {"format": {"type": "text"}},
    }


def _item_events(item: dict[str, Any], index: int) -> list[tuple[str, dict[str, Any]]]:
    """added, the item's own part/delta/done events, done: for a reasoning item, a message or a function call."""
    where = {"item_id": item["id"], "output_index": index}
    added = {**item, "status": "in_progress"}
    middle: list[tuple[str, dict[str, Any]]] = []
    if item["type"] == "reasoning":
        added = {"type": "reasoning", "id": item["id"], "summary": []}
        part = item["summary"][0]
        middle = [
            ("response.reasoning_summary_part.added", {**where, "summary_index": 0, "part": {**part, "text": ""}}),
            ("response.reasoning_summary_text.delta", {**where, "summary_index": 0, "delta": part["text"]}),
            ("response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": part["text"]}),
            ("response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part}),
        ]
    elif item["type"] == "message":
        added["content"] = []
        part, text = item["content"][0], item["content"][0]["text"]
        at = {**where, "content_index": 0}
        middle = [
            ("response.content_part.added", {**at, "part": {**part, "text": ""}}),
            ("response.output_text.delta", {**at, "delta": text}),
            ("response.output_text.done", {**at, "text": text}),
            ("response.content_part.done", {**at, "part": part}),
        ]
    else:
        added["arguments"] = ""
        middle = [
            ("response.function_call_arguments.delta", {**where, "delta": item["arguments"]}),
            ("response.function_call_arguments.done", {**where, "arguments": item["arguments"]}),
        ]
    opened = ("response.output_item.added", {"output_index": index, "item": added})
    return [opened, *middle, ("response.output_item.done", {"output_index": index, "item": item})]


def responses_events(body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    """The documented event order, item by item, each item's id the same in every event and in the response."""
    rid, items = "resp_" + _hex(), _response_items(reply)
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(body, rid, items, "in_progress")}),
        ("response.in_progress", {"response": _response(body, rid, items, "in_progress")}),
    ]
    for index, item in enumerate(items):
        events += _item_events(item, index)
    events.append(("response.completed", {"response": _response(body, rid, items, "completed")}))
    for seq, (name, data) in enumerate(events):
        data["type"], data["sequence_number"] = name, seq
    return events


# --- Anthropic Messages ------------------------------------------------------------------------------------------


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if MODE["reasoning"]:
        blocks.append({"type": "thinking", "thinking": THOUGHT, "signature": OPAQUE})
    if reply.tool_name is not None:
        blocks.append(
            {"type": "tool_use", "id": "toolu_" + _hex(), "name": reply.tool_name, "input": reply.tool_arguments}
        )
    else:
        blocks.append({"type": "text", "text": reply.text})
    return {
        "id": "msg_" + _hex(),
        "type": "message",
        "role": "assistant",
        "model": body.get("model", MODEL),
        "content": blocks,
        "stop_reason": "tool_use" if reply.tool_name is not None else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 50, "output_tokens": 5},
    }


def _block_events(block: dict[str, Any], index: int) -> list[tuple[str, dict[str, Any]]]:
    if block["type"] == "thinking":
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    elif block["type"] == "tool_use":
        opened, deltas = (
            {**block, "input": {}},
            [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}],
        )
    else:
        opened, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": block["text"]}]
    return [
        ("content_block_start", {"index": index, "content_block": opened}),
        *[("content_block_delta", {"index": index, "delta": d}) for d in deltas],
        ("content_block_stop", {"index": index}),
    ]


def anthropic_events(body: dict[str, Any], reply: Reply) -> list[tuple[str, dict[str, Any]]]:
    message = anthropic_message(body, reply)
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 50, "output_tokens": 1}}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"message": start})]
    for index, block in enumerate(message["content"]):
        events += _block_events(block, index)
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events += [("message_delta", {"delta": stop, "usage": {"output_tokens": 5}}), ("message_stop", {})]
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

    args = [a for a in sys.argv[1:] if a != "--reasoning"]
    MODE["reasoning"] = "--reasoning" in sys.argv
    LOG["path"] = Path(args[1])
    RULES[:] = load_rules(args[2] if len(args) > 2 else None)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
