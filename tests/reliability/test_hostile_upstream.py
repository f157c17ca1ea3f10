"""A real gateway in front of an upstream that answers with malformed HTTP, JSON and SSE: every answer is a
502 (or a 200 whose stream ends with an error event), in the client protocol's shape, for chat, Anthropic
messages and Responses, streaming or not; never a 500, a connection cut mid-answer, or a traceback in the log.

Before `backends/wire_check.py`, a `content` that was a number, `tool_calls` that was a string, a `choices`
list holding a number or token counts past 64 bits were 500s (35 tracebacks for these 50 answers), and a
stream whose chunk the converter could not read was cut without its error event.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from procs import free_port, run_gateway


def resp(status=200, body=b"", ctype="application/json", extra=b"", chunked=False, length=True):
    head = f"HTTP/1.1 {status} X\r\n".encode()
    if ctype:
        head += f"Content-Type: {ctype}\r\n".encode()
    head += extra
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + body
    if length:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"Connection: close\r\n\r\n" + body


def sse(*events, done=True):
    b = b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)
    return b + (b"data: [DONE]\n\n" if done else b"")


def chunk(i, **delta):
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


OK = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def okwith(**kw):
    d = json.loads(json.dumps(OK))
    d.update(kw)
    return d


def msgwith(**kw):
    d = json.loads(json.dumps(OK))
    d["choices"][0]["message"].update(kw)
    return d


CASES = {
    "not_json": resp(body=b"<html>oops</html>"),
    "empty": resp(body=b""),
    "json_list": resp(body=b"[1,2]"),
    "choices_missing": resp(body=json.dumps(okwith(choices=None)).encode()),
    "choices_str": resp(body=json.dumps(okwith(choices="x")).encode()),
    "choices_empty": resp(body=json.dumps(okwith(choices=[])).encode()),
    "choice_not_obj": resp(body=json.dumps(okwith(choices=[1])).encode()),
    "message_null": resp(
        body=json.dumps({**OK, "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}).encode()
    ),
    "content_num": resp(body=json.dumps(msgwith(content=5)).encode()),
    "content_list": resp(body=json.dumps(msgwith(content=[{"type": "text", "text": 1}])).encode()),
    "tool_calls_bad": resp(body=json.dumps(msgwith(tool_calls=[{"id": 1, "function": None}])).encode()),
    "tool_calls_str": resp(body=json.dumps(msgwith(tool_calls="x")).encode()),
    "tool_args_obj": resp(
        body=json.dumps(
            msgwith(tool_calls=[{"id": "a", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}])
        ).encode()
    ),
    "usage_neg": resp(
        body=json.dumps(okwith(usage={"prompt_tokens": -5, "completion_tokens": "x", "total_tokens": None})).encode()
    ),
    "usage_huge": resp(
        body=json.dumps(okwith(usage={"prompt_tokens": 10**30, "completion_tokens": 1e308, "total_tokens": 1})).encode()
    ),
    "usage_str": resp(body=json.dumps(okwith(usage="lots")).encode()),
    "finish_num": resp(
        body=json.dumps(
            {**OK, "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": 7}]}
        ).encode()
    ),
    "deep_json": resp(body=b'{"a":' * 5000 + b"1" + b"}" * 5000),
    "invalid_utf8": resp(body=b'{"choices":[{"message":{"content":"\xff\xfe"}}]}'),
    "nan": resp(body=json.dumps(okwith(usage={"prompt_tokens": float("nan")})).encode()),
    "status_200_error_body": resp(body=b'{"error":{"message":"bad"}}'),
    "status_418": resp(418, b"teapot", "text/plain"),
    "status_500_html": resp(500, b"<h1>err</h1>", "text/html"),
    "status_429_retry_huge": resp(429, b"{}", extra=b"Retry-After: 999999999999\r\n"),
    "status_429_retry_neg": resp(429, b"{}", extra=b"Retry-After: -5\r\n"),
    "status_302": resp(302, b"", extra=b"Location: http://169.254.169.254/latest\r\n"),
    "status_999": resp(999, b"{}"),
    "gzip_bomb": resp(body=gzip.compress(b" " * (200 * 1024 * 1024)), extra=b"Content-Encoding: gzip\r\n"),
    "gzip_corrupt": resp(body=b"\x1f\x8b\x08garbage", extra=b"Content-Encoding: gzip\r\n"),
    "encoding_unknown": resp(body=b"xx", extra=b"Content-Encoding: zstd-weird\r\n"),
    "short_body": resp(body=b'{"choices":', extra=b"").replace(b"Content-Length: 11", b"Content-Length: 500"),
    "bad_chunked": resp(body=b"zz\r\nabc\r\n0\r\n\r\n", chunked=True),
    "no_length_close": resp(body=json.dumps(OK).encode(), length=False),
    "huge_header": resp(body=json.dumps(OK).encode(), extra=b"X-Big: " + b"a" * 200000 + b"\r\n"),
    "bad_header": resp(body=json.dumps(OK).encode(), extra=b"X-Bad\x00: v\r\n"),
    "garbage_status": b"HTTP/9.9 abc\r\n\r\n",
    "not_http": b"SSH-2.0-OpenSSH\r\n",
    "close_now": b"",
    # streams
    "sse_invalid_json": resp(body=sse(b"{not json"), ctype="text/event-stream"),
    "sse_wrong_shape": resp(
        body=sse({"choices": "x"}, {"choices": [None]}, {"choices": [{"delta": None}]}), ctype="text/event-stream"
    ),
    "sse_content_num": resp(body=sse(chunk(0, content=5), chunk(0, content={"a": 1})), ctype="text/event-stream"),
    "sse_tool_bad_index": resp(
        body=sse(
            chunk(0, tool_calls=[{"index": "x", "function": {"arguments": 5}}]),
            chunk(0, tool_calls=[{"index": 10**20}]),
        ),
        ctype="text/event-stream",
    ),
    "sse_tool_neg_index": resp(
        body=sse(chunk(0, tool_calls=[{"index": -1, "id": "a", "function": {"name": "f", "arguments": "{"}}])),
        ctype="text/event-stream",
    ),
    "sse_no_done": resp(body=sse(chunk(0, content="hi"), done=False), ctype="text/event-stream"),
    "sse_huge_line": resp(body=b"data: " + b"a" * (20 * 1024 * 1024), ctype="text/event-stream"),
    "sse_usage_bad": resp(
        body=sse(chunk(0, content="hi"), {"choices": [], "usage": {"prompt_tokens": "x", "completion_tokens": -1}}),
        ctype="text/event-stream",
    ),
    "sse_error_event": resp(body=sse({"error": {"message": "boom"}}), ctype="text/event-stream"),
    "sse_as_json_ctype": resp(body=sse(chunk(0, content="hi")), ctype="application/json"),
    "json_as_sse": resp(body=json.dumps(OK).encode(), ctype="text/event-stream"),
    "sse_reasoning_num": resp(
        body=sse(chunk(0, reasoning_content=5), chunk(0, reasoning=[1])), ctype="text/event-stream"
    ),
}


class RawUpstream:
    """Answers every POST with the bytes of the current case (GETs: an empty model list)."""

    def __init__(self) -> None:
        self.case = "not_json"
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            self.loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", self.port))
            started.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        started.wait(10)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                part = await reader.read(65536)
                if not part:
                    return
                data += part
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(v) for k, _, v in (x.partition(b":") for x in head.split(b"\r\n"))
                           if k.lower() == b"content-length"), 0)  # fmt: skip
            while len(rest) < length:
                part = await reader.read(65536)
                if not part:
                    break
                rest += part
            writer.write(resp(body=b'{"data":[]}') if head.startswith(b"GET") else CASES[self.case])
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RawUpstream, str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile-upstream")
    upstream = RawUpstream()
    backend = {"engine": "vllm", "url": f"http://127.0.0.1:{upstream.port}/v1", "model": "m", "health_check": False}
    config = {
        "backends": {"up": backend},
        "layers": {name: {"backends": ["up"]} for name in ("edge", "multimodal", "coding")},
        # every answer reaches the upstream: no breaker opening, no retry
        "routing": {"breaker": {"failure_threshold": 1_000_000, "reset_s": 0.01}, "max_attempts": 1},
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
    }
    with run_gateway(tmp, config, ready=False) as gw:
        yield upstream, gw.url, gw


REQUESTS = {
    "chat": ("/v1/chat/completions", {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}),
    "messages": ("/v1/messages", {"model": "edge", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
    "responses": ("/v1/responses", {"model": "edge", "input": "hi", "store": False}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_upstream_answer_is_a_502_or_an_error_event(stack: tuple[RawUpstream, str, Any], case: str) -> None:
    upstream, url, gw = stack
    upstream.case = case
    with httpx.Client(timeout=60) as client:
        for protocol, (path, body) in REQUESTS.items():
            for stream in (False, True):
                with client.stream("POST", url + path, json={**body, "stream": stream}) as r:
                    text = r.read().decode("utf-8", "replace")  # a cut connection raises here
                where = (case, protocol, stream, r.status_code, text[:300])
                assert r.status_code in (200, 502), where
                if r.status_code == 502:
                    error = json.loads(text)
                    assert error["error"]["message"], where
                    assert protocol != "messages" or error["type"] == "error", where
                elif stream:
                    assert text.rstrip().endswith(("[DONE]", "}")) and "data:" in text, where
                else:
                    json.loads(text)
        assert client.get(url + "/healthz").status_code == 200
    assert "Traceback" not in gw.log()
