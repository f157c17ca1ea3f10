"""A real, separate OpenAI-compatible HTTP server whose behaviour is chosen by the requested model name.

Run it as a process: `python -m tests.fakes.upstream PORT` (uvicorn, raw ASGI). Behaviours:

    echo                     the completion's content is the JSON body the server received
    (POST /v1/completions and /v1/embeddings answer legacy completions and 3-number embeddings)
    tool-call                answers with a tool call to the first tool in the request (or `lookup`)
    fail-before-first-byte   HTTP 500 before anything else
    fail-mid-stream          streams two chunks, then drops the connection
    slow / slow-N            waits N seconds (default 2) before answering
    slow-stream              one chunk every 0.2 s for a long time (to observe cancellation)
    no-usage                 streams without the usage chunk
    bad-json                 HTTP 200 with a body that is not JSON
    anything else            "hello from <model>"

GET /health answers 200 unless POST /admin/health {"ok": false} turned it off. GET /stats returns counters:
requests per model, streams the client abandoned, the last body received.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

STATS: dict[str, Any] = {"requests": {}, "abandoned": 0, "completed_streams": 0, "last_body": None}
HEALTH = {"ok": True}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _completion(model: str, message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE,
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _tool_message(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or [{"function": {"name": "lookup"}}]
    name = tools[0]["function"]["name"]
    call = {"id": "call_fake1", "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _json(send: Any, status: int, obj: Any) -> None:
    raw = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": raw})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if path == "/health":
        await _json(send, 200 if HEALTH["ok"] else 503, {"ok": HEALTH["ok"]})
    elif path == "/stats":
        await _json(send, 200, STATS)
    elif path == "/admin/health" and method == "POST":
        HEALTH["ok"] = bool(json.loads(await _read(receive))["ok"])
        await _json(send, 200, HEALTH)
    elif path == "/v1/models":
        await _json(send, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
    elif path == "/v1/chat/completions" and method == "POST":
        await _chat(json.loads(await _read(receive)), receive, send)
    elif path == "/v1/completions" and method == "POST":
        await _legacy(json.loads(await _read(receive)), send)
    elif path == "/v1/embeddings" and method == "POST":
        body = json.loads(await _read(receive))
        STATS["last_body"] = body
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, float(len(str(x)))]}
            for i, x in enumerate(inputs)
        ]
        usage = {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}
        await _json(send, 200, {"object": "list", "data": data, "model": body["model"], "usage": usage})
    else:
        await _json(send, 404, {"error": {"message": "not found"}})


async def _legacy(body: dict[str, Any], send: Any) -> None:
    """A legacy text completion: the prompt's length, whole or as a stream of `text` chunks."""
    STATS["last_body"] = body
    text = f" completed {len(str(body.get('prompt')))} characters"
    base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": body["model"]}
    if not body.get("stream"):
        choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
        await _json(send, 200, {**base, "choices": [choice], "usage": USAGE})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for word in text.split(" ")[1:]:
        chunk = {**base, "choices": [{"index": 0, "text": " " + word, "finish_reason": None}]}
        await send(
            {"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n", "more_body": True}
        )
    end = {**base, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
    tail = b"data: " + json.dumps(end).encode() + b"\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        tail += b"data: " + json.dumps({**base, "choices": [], "usage": USAGE}).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n", "more_body": False})


async def _chat(body: dict[str, Any], receive: Any, send: Any) -> None:
    model = str(body.get("model"))
    STATS["requests"][model] = STATS["requests"].get(model, 0) + 1
    STATS["last_body"] = body
    if model.startswith("slow") and model != "slow-stream":
        await asyncio.sleep(float(model.split("-")[1]) if "-" in model else 2.0)
    if model == "fail-before-first-byte":
        await _json(send, 500, {"error": {"message": "internal failure (injected)"}})
        return
    if model == "bad-json":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"<html>not json</html>"})
        return
    if model == "echo":
        message: dict[str, Any] = {"role": "assistant", "content": json.dumps(body, sort_keys=True)}
    elif model == "tool-call":
        message = _tool_message(body)
    else:
        message = {"role": "assistant", "content": f"hello from {model}"}
    if not body.get("stream"):
        await _json(send, 200, _completion(model, message, "tool_calls" if model == "tool-call" else "stop"))
        return
    await _stream(model, message, body, receive, send)


async def _stream(model: str, message: dict[str, Any], body: dict[str, Any], receive: Any, send: Any) -> None:
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send(
        {"type": "http.response.body", "body": _chunk(model, {"role": "assistant", "content": ""}), "more_body": True}
    )
    if model == "fail-mid-stream":
        await send({"type": "http.response.body", "body": _chunk(model, {"content": "partial "}), "more_body": True})
        raise RuntimeError("connection dropped mid-stream (injected)")
    if model == "slow-stream":
        disconnected = asyncio.ensure_future(receive())
        for i in range(600):
            if disconnected.done():
                STATS["abandoned"] += 1
                return
            await send({"type": "http.response.body", "body": _chunk(model, {"content": f"t{i} "}), "more_body": True})
            await asyncio.sleep(0.2)
    elif message.get("tool_calls"):
        calls = [{"index": 0, **message["tool_calls"][0]}]
        await send({"type": "http.response.body", "body": _chunk(model, {"tool_calls": calls}), "more_body": True})
    else:
        for word in str(message["content"]).split(" "):
            await send(
                {"type": "http.response.body", "body": _chunk(model, {"content": word + " "}), "more_body": True}
            )
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    await send({"type": "http.response.body", "body": _chunk(model, {}, finish), "more_body": True})
    wants_usage = (body.get("stream_options") or {}).get("include_usage")
    if wants_usage and model != "no-usage":
        usage = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [],
            "usage": USAGE,
        }
        await send(
            {"type": "http.response.body", "body": b"data: " + json.dumps(usage).encode() + b"\n\n", "more_body": True}
        )
    STATS["completed_streams"] += 1
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
