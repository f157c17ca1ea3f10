"""The official `anthropic` client against a running gateway: messages, streams, tool use, errors."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from procs import Proc, upstream_backend


@pytest.fixture(scope="module")
def client(embedded_gateway: Proc) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=embedded_gateway.url, api_key="unused", max_retries=0, timeout=300)


def test_message(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="edge",
        max_tokens=20,
        system="Answer in one sentence.",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_body={"temperature": 0},
    )
    message = raw.parse()
    assert raw.headers["x-owstack-backend"] == "edge-local"
    assert raw.headers["x-owstack-ai-generated"] == "true"
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 5 and 0 < message.usage.output_tokens <= 20


def test_stream(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="edge",
        max_tokens=16,
        messages=[{"role": "user", "content": "Name three fruits."}],
        extra_body={"temperature": 0},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip() and final.content[0].text == text  # type: ignore[union-attr]
    assert 0 < final.usage.output_tokens <= 16 and final.usage.input_tokens > 5


def test_thinking_budget_maps_to_the_reasoning_policy(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="edge",
        max_tokens=40,
        messages=[{"role": "user", "content": "What is 7 times 6?"}],
        thinking={"type": "enabled", "budget_tokens": 5},
    )
    kinds = [block.type for block in message.content]
    assert kinds[0] == "thinking"


def test_errors_use_anthropics_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="claude-nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.post(
            "/v1/messages", body={"model": "edge", "messages": [{"role": "user", "content": "hi"}]}, cast_to=dict
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "max_tokens" in bad.value.message


def test_tool_use_round_trip(start_gateway: Any, fake_upstream: Proc) -> None:
    config = {
        "backends": {
            "tools": upstream_backend(fake_upstream, "tool-call"),
            "echo": upstream_backend(fake_upstream, "echo"),
        }
    }
    with start_gateway(config) as gw:
        client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        tools: Any = [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}]
        message = client.messages.create(
            model="tool-call", max_tokens=50, tools=tools, messages=[{"role": "user", "content": "weather in Paris?"}]
        )
        assert message.stop_reason == "tool_use"
        use = message.content[0]
        assert use.type == "tool_use" and use.name == "weather" and use.input == {"city": "Paris"}
        with client.messages.stream(
            model="tool-call", max_tokens=50, tools=tools, messages=[{"role": "user", "content": "weather?"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris"}
        # The follow-up turn reaches the upstream in OpenAI form: tool_calls and a tool message
        echoed = client.messages.create(
            model="echo",
            max_tokens=50,
            tools=tools,
            tool_choice={"type": "any"},
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "21C"}]},
            ],
        )
        sent = json.loads(echoed.content[0].text)  # type: ignore[union-attr]
        assert sent["tool_choice"] == "required"
        assert sent["tools"][0]["function"]["parameters"] == {"type": "object"}
        assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'}
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": "21C"}
