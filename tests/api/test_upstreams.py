"""`openai_http` backends against a real fake upstream: passthrough, retries, fallback, breaker, errors.

The gateway runs in process (tests/api/conftest.py): its backends, HTTP client and timeouts are the real
ones, and only the upstream is another process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.conftest import App, serve
from procs import Proc, free_port, upstream_backend

pytestmark = pytest.mark.anyio
JSON_HEADERS = {"content-type": "application/json"}


def stats(upstream: Proc) -> dict[str, Any]:
    return httpx.get(upstream.url + "/stats").json()


def requests_to(upstream: Proc, model: str) -> int:
    return int(stats(upstream)["requests"].get(model, 0))


@pytest.fixture(scope="module")
async def gateway(fake_upstream: Proc, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    config = {
        "backends": {
            "echo": upstream_backend(fake_upstream, "echo"),
            "tools": upstream_backend(fake_upstream, "tool-call"),
            "broken": upstream_backend(fake_upstream, "fail-before-first-byte", health_check=False),
            "dropper": upstream_backend(fake_upstream, "fail-mid-stream", health_check=False),
            "slow": upstream_backend(fake_upstream, "slow-3", timeouts={"read_s": 0.5}),
            "down": {"engine": "vllm", "url": down, "model": "down-model", "health_check": False},
            "good": upstream_backend(fake_upstream, "good"),
            "bad-json": upstream_backend(fake_upstream, "bad-json"),
        },
        "layers": {
            "coding": {"backends": ["broken"], "fallback": ["good"]},
            "multimodal": {"backends": ["down"], "fallback": ["good"]},
            "edge": {"backends": ["echo"]},
        },
        "routing": {"breaker": {"failure_threshold": 100, "reset_s": 60}},
    }
    async with serve(tmp_path_factory.mktemp("upstreams"), config) as app:
        yield app


@pytest.fixture(scope="module")
def client(gateway: App) -> openai.AsyncOpenAI:
    return gateway.openai()


async def test_request_fields_are_passed_through_and_model_rewritten(client: openai.AsyncOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
    messages: list[Any] = [
        {"role": "user", "content": "find it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    completion = await client.chat.completions.create(
        model="edge",
        messages=messages,
        tools=tools,
        tool_choice="auto",
        temperature=0.3,
        max_tokens=9,
        seed=7,
        extra_body={"top_k": 5, "chat_template_kwargs": {"enable_thinking": False}},
    )
    received = json.loads(completion.choices[0].message.content or "{}")
    assert received["model"] == "echo"  # the backend's model id, not the layer alias
    assert received["tools"] == tools
    assert received["tool_choice"] == "auto"
    assert received["messages"] == messages
    assert received["temperature"] == 0.3 and received["max_tokens"] == 9 and received["seed"] == 7
    assert received["top_k"] == 5 and received["chat_template_kwargs"] == {"enable_thinking": False}
    assert received["stream"] is False


async def test_tool_call_passthrough(client: openai.AsyncOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    completion = await client.chat.completions.create(
        model="tool-call", messages=[{"role": "user", "content": "weather in Paris?"}], tools=tools
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    streamed = [
        c
        async for c in await client.chat.completions.create(
            model="tool-call", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True
        )
    ]
    deltas = [tc for c in streamed if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas and deltas[0].function is not None and deltas[0].function.name == "weather"


async def test_stream_usage_is_requested_upstream_but_only_forwarded_when_asked(
    client: openai.AsyncOpenAI, fake_upstream: Proc
) -> None:
    plain = [
        c
        async for c in await client.chat.completions.create(
            model="good", messages=[{"role": "user", "content": "x"}], stream=True
        )
    ]
    assert stats(fake_upstream)["last_body"]["stream_options"] == {"include_usage": True}
    assert all(c.usage is None for c in plain)
    text = "".join(c.choices[0].delta.content or "" for c in plain if c.choices)
    assert text.strip() == "hello from good"
    with_usage = [
        c
        async for c in await client.chat.completions.create(
            model="good",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    ]
    assert with_usage[-1].usage is not None and with_usage[-1].usage.total_tokens == 18


async def test_failure_before_first_byte_falls_back(client: openai.AsyncOpenAI, fake_upstream: Proc) -> None:
    before = requests_to(fake_upstream, "fail-before-first-byte")
    raw = await client.chat.completions.with_raw_response.create(
        model="coding", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-owstack-backend"] == "good"
    assert raw.parse().choices[0].message.content == "hello from good"
    assert requests_to(fake_upstream, "fail-before-first-byte") == before + 1
    stream = await client.chat.completions.create(
        model="coding", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]).strip() == "hello from good"


async def test_upstream_down_falls_back(client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="multimodal", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-owstack-layer"] == "multimodal"
    assert raw.headers["x-owstack-backend"] == "good"


async def test_upstream_failure_without_fallback_is_502(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(
            model="fail-before-first-byte", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 502
    assert info.value.body["code"] == "upstream_http_500"  # type: ignore[index]
    assert info.value.response.headers["x-owstack-backend"] == "broken"
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="down-model", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_unreachable"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="bad-json", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502


async def test_slow_upstream_is_504(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:  # the 0.5 s read timeout: the upstream answers after 3 s
        await client.chat.completions.create(model="slow-3", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 504
    assert info.value.body["code"] == "upstream_timeout"  # type: ignore[index]


async def test_connection_dropped_mid_stream_ends_with_an_error_event(client: openai.AsyncOpenAI, gateway: App) -> None:
    stream = await client.chat.completions.create(
        model="fail-mid-stream", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            received.append(chunk)
    assert received, "the chunks before the drop reach the client"
    assert "dropped" in str(info.value.message) or "upstream" in str(info.value.message)
    # The raw stream: chunks, an error event, then [DONE]; the HTTP status stayed 200.
    async with gateway.http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "fail-mid-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as r:
        assert r.status_code == 200
        events = [line[6:] async for line in r.aiter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "upstream_disconnected"


async def test_body_over_the_limit_is_413(tmp_path: Path, fake_upstream: Proc) -> None:
    config = {"server": {"max_body_bytes": 2048}, "backends": {"good": upstream_backend(fake_upstream, "good")}}
    async with serve(tmp_path, config) as gw:
        client = gw.openai("x")
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="edge", messages=[{"role": "user", "content": "x" * 5000}])
        assert info.value.status_code == 413
        assert info.value.body["code"] == "payload_too_large"  # type: ignore[index]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length
            yield b"{" + b" " * 3000 + b"}"

        # chunked upload without Content-Length is cut off too
        r = await gw.http.post("/v1/chat/completions", content=chunked(), headers=JSON_HEADERS)
        assert r.status_code == 413
        ok = await client.chat.completions.create(model="edge", messages=[{"role": "user", "content": "small"}])
        assert ok.choices[0].message.content == "hello from good"
