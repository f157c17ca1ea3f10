"""The official `anthropic` SDK against owstack's Messages API, the way Claude Code and agent frameworks use it.

Behind the gateway is the scripted upstream (a vLLM backend), so every answer is known and each test can see
what the gateway forwarded: token counting, the stream's event order and usage, a tool_use round trip (whole
and streamed), a `role: "system"` message inside `messages`, stop sequences, unknown betas and the model list.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from scripted_world import COUNTING, HELLO, MODEL, THOUGHT, WEATHER, WEATHER_TEXT, observing

from procs import Proc

# the beta list Claude Code 2.1.332 sends (tests/fixtures/clients/claude_print.json), plus the one that names
# the system-message-in-messages feature and one no server knows
CLAUDE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20,"
    "effort-2025-11-24,mid-conversation-system-2026-04-07,no-such-beta-2099-01-01"
)
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture(scope="module")
def client(gateway: Proc) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="sk-test", max_retries=0, timeout=120)


def _collapsed(types: list[str]) -> list[str]:
    out: list[str] = []
    for t in types:
        if not (out and out[-1] == t == "content_block_delta"):
            out.append(t)
    return out


def test_count_tokens_counts_and_grows_with_the_prompt(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    long = client.messages.count_tokens(
        model=MODEL,
        system="You are a careful assistant. " * 20,
        messages=[{"role": "user", "content": "Tell me about the weather in Paris in spring. " * 10}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert 0 < short.input_tokens < long.input_tokens
    assert long.input_tokens > 150  # 20 system sentences and 10 user sentences are not a handful of tokens


def test_stream_event_order_usage_and_request_id(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Say hello."}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw_types = [e.type for e in events if e.type in EVENTS]
    assert _collapsed(raw_types) == EVENTS, raw_types
    start = next(e for e in events if e.type == "message_start")
    assert start.message.usage.input_tokens > 0, "message_start must report the prompt's tokens"
    assert final.content[0].type == "text" and final.content[0].text == HELLO
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Say hello."}]
    )
    assert raw.headers.get("request-id")


def test_tool_use_round_trip(client: anthropic.Anthropic, gateway: Proc, scripted: Proc) -> None:
    question: dict[str, Any] = {"role": "user", "content": "What is the weather in Paris?"}
    with observing(scripted, gateway) as seen:
        first = client.messages.create(model=MODEL, max_tokens=300, messages=[question], tools=[WEATHER_TOOL])  # type: ignore[list-item]
        assert first.stop_reason == "tool_use"
        [use] = [b for b in first.content if b.type == "tool_use"]
        assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id
        assert not [b for b in first.content if b.type == "text" and "<tool_call>" in b.text]
        result = {"type": "tool_result", "tool_use_id": use.id, "content": WEATHER}
        second = client.messages.create(
            model=MODEL,
            max_tokens=300,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],  # type: ignore[list-item]
        )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text == WEATHER_TEXT.format(result=WEATHER)
    tool_messages = [m for m in seen.forwarded[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1 and WEATHER in json.dumps(tool_messages[0]["content"])


def test_streamed_tool_use_keeps_input_json_deltas(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=300,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    partial = "".join(
        e.delta.partial_json for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert json.loads(partial) == {"city": "Paris"}
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [b.type for b in starts] == ["tool_use"], "no text block may carry the tool call's markup"
    assert final.stop_reason == "tool_use" and final.content[0].type == "tool_use"


def test_a_system_message_inside_messages_is_accepted_and_forwarded(
    client: anthropic.Anthropic, gateway: Proc, scripted: Proc
) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Say hello."}]},
        {"role": "system", "content": "Answer in one short sentence."},
    ]
    with observing(scripted, gateway) as seen:
        message = client.messages.create(
            model=MODEL,
            max_tokens=100,
            system="You are a helpful assistant.",
            messages=[{"role": "user", "content": "placeholder"}],
            extra_body={"messages": messages},
            extra_headers={"anthropic-beta": CLAUDE_BETAS},
        )
    assert message.content[0].type == "text" and message.content[0].text == HELLO
    systems = [json.dumps(m["content"]) for m in seen.forwarded[-1]["messages"] if m["role"] == "system"]
    assert any("Answer in one short sentence." in s for s in systems), seen.forwarded[-1]["messages"]
    assert seen.refused() == []


def test_stop_sequence_is_reported(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Count to five."}], stop_sequences=["STOP"]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "STOP"
    assert message.content[0].type == "text" and message.content[0].text.strip() == COUNTING.split("STOP")[0].strip()


def test_streamed_stop_sequence_is_reported(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Count to five."}], stop_sequences=["STOP"]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "STOP"


def test_thinking_is_streamed_with_thinking_and_signature_deltas(client: anthropic.Anthropic) -> None:
    question: Any = {"role": "user", "content": "Think first, then say hello."}
    with client.messages.stream(
        model=MODEL, max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}, messages=[question]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == THOUGHT
    assert [d.type for d in deltas if d.type != "text_delta"][-1] == "signature_delta"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].type == "thinking" and final.content[0].signature
    # as Claude Code does: the signed thinking block goes back as the assistant turn's first block
    again = client.messages.create(
        model=MODEL,
        max_tokens=2000,
        messages=[question, {"role": "assistant", "content": final.content}, {"role": "user", "content": "Again."}],
        extra_body={"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
    )
    assert again.content[-1].type == "text" and again.content[-1].text == HELLO


def test_no_thinking_block_unless_thinking_was_requested(client: anthropic.Anthropic) -> None:
    """Anthropic returns thinking blocks only when `thinking` is enabled; clients that read `content[0].text`
    (most simple integrations) break on a thinking block they did not ask for."""
    message = client.messages.create(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Think first, then say hello."}]
    )
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == HELLO


def test_models_list_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    models = list(client.models.list())
    assert MODEL in [m.id for m in models]
    mine = next(m for m in models if m.id == MODEL)
    assert mine.type == "model" and mine.display_name and mine.created_at is not None


def test_an_unknown_route_answers_in_anthropic_error_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        client.get("/v1/messages/batches/nope", cast_to=object)
    assert isinstance(err.value.body, dict) and err.value.body.get("type") == "error"
