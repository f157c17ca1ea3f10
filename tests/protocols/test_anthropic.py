"""Anthropic Messages as Claude Code uses it, through the whole gateway in process (official `anthropic` SDK)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest

from fakes.backend import Reply
from protocols.conftest import App, gateway

pytestmark = pytest.mark.anyio
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "mid-conversation-system-2026-04-07,effort-2025-11-24,some-future-beta-2030-01-01"
)


def sdk(app: App) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url="http://127.0.0.1",
        api_key="x",
        http_client=app.sdk_http,
        max_retries=0,
        default_headers={"anthropic-beta": CLAUDE_CODE_BETAS},
    )


async def test_claude_code_shaped_request(tmp_path: Path) -> None:
    """The body Claude Code sends: system blocks, a system message inside messages, adaptive thinking, effort,
    context management, cache_control, deferred tools, metadata; answered, never refused."""
    body: Any = {
        "model": "coding",
        "max_tokens": 32000,
        "stream": False,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "List files"}]},
            {"role": "system", "content": "# Environment\ncwd: /repo"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "a.py",
                        "is_error": False,
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "Run a command",
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            },
            {"name": "Deferred", "description": "later", "input_schema": {"type": "object"}, "defer_loading": True},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": '{"session_id": "s"}'},
    }
    async with gateway(tmp_path, [Reply(text="a.py")]) as app:
        r = await app.client.post(
            "/v1/messages?beta=true",
            json=body,
            headers={"anthropic-version": "2023-06-01", "anthropic-beta": CLAUDE_CODE_BETAS},
        )
        sent = app.backend.requests[0]
    assert r.status_code == 200, r.text
    assert r.headers["request-id"] == r.headers["x-request-id"]
    assert r.json()["content"] == [{"type": "text", "text": "a.py"}]
    roles = [m["role"] for m in sent.messages]
    assert roles == ["system", "user", "system", "assistant", "tool"]
    assert sent.messages[0]["content"] == "You are Claude Code.\nBe careful."
    assert sent.messages[2]["content"] == "# Environment\ncwd: /repo"
    assert sent.messages[4] == {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py"}
    assert sent.reasoning is not None and str(sent.reasoning) == "default"


async def test_stop_sequence_is_reported(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="one, two", stop="three")]) as app:
        client = sdk(app)
        message = await client.messages.create(
            model="edge", max_tokens=50, stop_sequences=["three"], messages=[{"role": "user", "content": "count"}]
        )
        async with client.messages.stream(
            model="edge", max_tokens=50, stop_sequences=["three"], messages=[{"role": "user", "content": "count"}]
        ) as stream:
            final = await stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "three")
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "three")


async def test_stream_event_order_input_tokens_thinking_and_tool_use(tmp_path: Path) -> None:
    reply = Reply(reasoning="let me see", text="Running it.", calls=[("Bash", {"command": "ls"})], usage=(40, 9))
    async with gateway(tmp_path, [reply]) as app:
        async with sdk(app).messages.stream(
            model="coding",
            max_tokens=100,
            thinking={"type": "enabled", "budget_tokens": 2048},
            tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": "list files"}],
        ) as stream:
            events = [e async for e in stream]
            final = await stream.get_final_message()
        policy = app.backend.requests[0].reasoning
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    start = events[0]
    assert start.message.usage.input_tokens > 0  # type: ignore[union-attr]
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert deltas.index("signature_delta") > deltas.index("thinking_delta")
    assert deltas.index("signature_delta") < deltas.index("text_delta")
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature  # type: ignore[union-attr]
    assert final.content[2].input == {"command": "ls"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 9
    assert str(policy) == "budget:2048"


async def test_count_tokens(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        client = sdk(app)
        short = await client.messages.count_tokens(model="edge", messages=[{"role": "user", "content": "Hi"}])
        long = await client.messages.count_tokens(
            model="edge",
            system="You are a careful assistant.",
            messages=[{"role": "user", "content": "Hi " * 200}],
            tools=[{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
        )
    assert 0 < short.input_tokens < long.input_tokens
    assert not app.backend.requests  # nothing went upstream


async def test_images_and_documents_are_passed_on(tmp_path: Path) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    content: Any = [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [
                {"type": "text", "text": "screenshot:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            ],
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "The contract."},
            "title": "c.txt",
        },
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
    ]
    messages: Any = [
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]},
        {"role": "user", "content": content},
    ]
    async with gateway(tmp_path, [Reply(text="I see it")]) as app:
        await sdk(app).messages.create(model="auto", max_tokens=10, messages=messages)
        sent = app.backend.requests[0]
    assert sent.has_images
    tool, shown, user = sent.messages[2:]
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "screenshot:"}
    assert shown["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert user["content"][:2] == [
        {"type": "text", "text": "Document: c.txt"},
        {"type": "text", "text": "The contract."},
    ]
    assert user["content"][2]["type"] == "file"


async def test_structured_output_and_effort(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    async with gateway(tmp_path, [Reply(text='{"ok": true}')]) as app:
        r = await app.client.post(
            "/v1/messages",
            json={
                "model": "edge",
                "max_tokens": 20,
                "messages": [{"role": "user", "content": "ok?"}],
                "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
            },
        )
        sent = app.backend.requests[0]
    assert r.status_code == 200
    assert sent.params["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert str(sent.reasoning) == "budget:1024"


async def test_errors_in_anthropic_shape_everywhere(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        missing = await app.client.post("/v1/messages/nope", json={}, headers={"anthropic-version": "2023-06-01"})
        bad = await app.client.post("/v1/messages", json={"model": "edge", "messages": []})
        server_tool = await app.client.post(
            "/v1/messages",
            json={
                "model": "edge",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
        )
        unknown_model = await sdk(app).messages.with_raw_response.create(
            model="edge", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.status_code == 404 and missing.json()["type"] == "error"
    assert missing.json()["error"]["type"] == "not_found_error" and missing.headers["request-id"]
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert server_tool.status_code == 400 and "web_search" in server_tool.json()["error"]["message"]
    assert unknown_model.http_response.status_code == 200


async def test_models_in_anthropic_shape(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        listed = await sdk(app).models.list()
        one = await sdk(app).models.retrieve("edge")
        openai_shape = (await app.client.get("/v1/models/fake-model")).json()
        missing = await app.client.get("/v1/models/nope", headers={"anthropic-version": "2023-06-01"})
    ids = [m.id for m in listed.data]
    assert {"coding", "edge", "auto", "fake-model"} <= set(ids)
    assert one.id == "edge" and one.type == "model"
    assert openai_shape["object"] == "model" and openai_shape["owned_by"] == "vllm"
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
