"""A real OpenAI-compatible chat-completions server that answers from a script: the model behind agent tests.

Run it as a process: `python tests/fakes/scripted.py PORT [SCRIPT.json]` (uvicorn, raw ASGI), and point an
owstack backend at it like any vLLM server (`engine: vllm`, `url: http://127.0.0.1:PORT/v1`, `model: NAME`).
The script (format in tests/fakes/agent_script.py; without one, its default: write a file with the client's
shell tool, read it back, answer quoting it) decides each answer from the conversation it receives, so a real
agent loop runs through the gateway: tool call, tool result, next call, final message. The embedded 135M
model cannot drive such a loop, and its 4k context cannot hold an agent CLI's prompt.

What it speaks, as vLLM does:

    GET  /health                  200
    GET  /v1/models               the model ids the script names (and `scripted`)
    POST /v1/chat/completions     whole or streamed; a tool call streams as vLLM streams it (id, type and name in
                                  the first delta, the arguments in several fragments), `finish_reason`
                                  `tool_calls`; `stream_options.include_usage` adds the usage chunk; a `stop`
                                  string found in the scripted text cuts it there, with vLLM's
                                  `stop_reason: "<the string>"` beside `finish_reason: "stop"`; a rule's
                                  `reasoning` comes first, as vLLM's `reasoning_content` (message or deltas),
                                  counted in `usage.completion_tokens_details.reasoning_tokens`
    GET  /requests                every chat body received so far (what the gateway really forwarded)
    POST /requests/clear          forget them
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from agent_script import Reply, decide, from_chat, load_rules

RULES: list[dict[str, Any]] = load_rules(None)
RECEIVED: list[dict[str, Any]] = []
FRAGMENT = 7  # characters of tool-call arguments per streamed delta


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    prompt = max(1, len(json.dumps(body.get("messages"))) // 4)
    reasoning = len(reply.reasoning) // 4
    completion = max(1, len(reply.text or json.dumps(reply.tool_arguments)) // 4) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if reasoning:  # as servers that count reasoning report it
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _cut(body: dict[str, Any], reply: Reply) -> tuple[Reply, str | None]:
    """Apply `stop` as an engine does: the text ends before the first stop string, which is reported."""
    stops = body.get("stop")
    stops = [stops] if isinstance(stops, str) else list(stops or [])
    found = [(reply.text.find(s), s) for s in stops if s and s in reply.text]
    if reply.tool_name is not None or not found:
        return reply, None
    at, stop = min(found)
    return Reply(text=reply.text[:at]), stop


def _message(reply: Reply, call_id: str) -> dict[str, Any]:
    thinking = {"reasoning_content": reply.reasoning} if reply.reasoning else {}
    if reply.tool_name is None:
        return {"role": "assistant", "content": reply.text, **thinking}
    function = {"name": reply.tool_name, "arguments": json.dumps(reply.tool_arguments)}
    call = {"id": call_id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [call], **thinking}


def _frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _chunks(body: dict[str, Any], reply: Reply, stop: str | None, base: dict[str, Any], call_id: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}
        return _frame({**base, "object": "chat.completion.chunk", "choices": [choice]})

    frames = [chunk({"role": "assistant", "content": ""})]
    words = reply.reasoning.split(" ") if reply.reasoning else []
    frames += [chunk({"reasoning_content": w if i == len(words) - 1 else w + " "}) for i, w in enumerate(words)]
    if reply.tool_name is None:
        words = reply.text.split(" ")
        frames += [chunk({"content": w if i == len(words) - 1 else w + " "}) for i, w in enumerate(words)]
        frames.append(chunk({}, "stop", stop_reason=stop))
    else:
        args = json.dumps(reply.tool_arguments)
        head = {"index": 0, "id": call_id, "type": "function", "function": {"name": reply.tool_name}}
        head["function"]["arguments"] = ""
        frames.append(chunk({"tool_calls": [head]}))
        for at in range(0, len(args), FRAGMENT):
            frames.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[at : at + FRAGMENT]}}]}))
        frames.append(chunk({}, "tool_calls", stop_reason=None))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {**base, "object": "chat.completion.chunk", "choices": [], "usage": _usage(body, reply)}
        frames.append(_frame(usage))
    return [*frames, b"data: [DONE]\n\n"]


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


async def _chat(body: dict[str, Any], send: Any) -> None:
    RECEIVED.append(body)
    reply, stop = _cut(body, decide(from_chat(body), RULES))
    call_id = "call_" + uuid.uuid4().hex[:20]
    base = {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "created": int(time.time()), "model": body.get("model")}
    if body.get("stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for frame in _chunks(body, reply, stop, base, call_id):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    finish = "tool_calls" if reply.tool_name else "stop"
    choice = {"index": 0, "message": _message(reply, call_id), "logprobs": None, "finish_reason": finish}
    choice["stop_reason"] = stop
    await _json(send, 200, {**base, "object": "chat.completion", "choices": [choice], "usage": _usage(body, reply)})


def _models() -> dict[str, Any]:
    names = {"scripted", *(str(r.get("when", {}).get("model")) for r in RULES if r.get("when", {}).get("model"))}
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "scripted"} for n in sorted(names)]
    return {"object": "list", "data": data}


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
    raw = await _read(receive)
    if path == "/health":
        await _json(send, 200, {"ok": True})
    elif path == "/v1/models":
        await _json(send, 200, _models())
    elif path == "/requests":
        await _json(send, 200, RECEIVED)
    elif path == "/requests/clear" and method == "POST":
        RECEIVED.clear()
        await _json(send, 200, {"ok": True})
    elif path == "/v1/chat/completions" and method == "POST":
        try:
            body = json.loads(raw)
        except ValueError:
            await _json(send, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        await _chat(body, send)
    else:
        await _json(send, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})


if __name__ == "__main__":
    import uvicorn

    RULES[:] = load_rules(sys.argv[2] if len(sys.argv) > 2 else None)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="on")
