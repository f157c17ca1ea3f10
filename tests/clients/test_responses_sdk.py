"""The official `openai` SDK on the Responses API (`POST /v1/responses`) through owstack.

The model behind the gateway is the scripted upstream (a vLLM backend), so each answer is known: the tests
check the Responses shapes the SDK parses (items, ids, usage, the stream's event order and ids), that the
request was translated into the chat completion the upstream received, and the stored-response lifecycle.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from scripted_world import (
    FORECAST,
    HELLO,
    MODEL,
    THOUGHT,
    WEATHER,
    WEATHER_TEXT,
    Forecast,
    forwarded_schema,
    observing,
)

from procs import Proc

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
# the documented order for one message item; deltas may repeat
MESSAGE_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def client(gateway: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="sk-test", max_retries=0, timeout=120)


def _collapsed(types: list[str]) -> list[str]:
    """Event types with runs of the same delta event collapsed to one."""
    out: list[str] = []
    for t in types:
        if not (out and out[-1] == t and t.endswith(".delta")):
            out.append(t)
    return out


def test_create_answers_with_one_message_item_and_usage(client: openai.OpenAI, gateway: Proc, scripted: Proc) -> None:
    with observing(scripted, gateway) as seen:
        response = client.responses.create(model=MODEL, input="Say hello.", instructions="You are terse.")
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp")
    assert response.output_text == HELLO
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.id
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    [body] = seen.forwarded
    assert body["messages"][0]["role"] in ("system", "developer") and "You are terse." in str(body["messages"][0])
    assert body["messages"][-1]["role"] == "user" and "Say hello." in json.dumps(body["messages"][-1])
    assert seen.refused() == []


def test_stream_emits_the_documented_events_in_order_with_one_item_id(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Say hello.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert _collapsed(types) == MESSAGE_EVENTS, types
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == HELLO
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == HELLO
    item_ids = {getattr(e, "item_id", None) for e in events} - {None}
    item_ids |= {e.item.id for e in events if e.type in ("response.output_item.added", "response.output_item.done")}
    assert item_ids == {final.output[0].id}, "the item id must be the same in every event and in the final response"
    created = events[0].response
    assert created.id == final.id and final.status == "completed" and final.output_text == HELLO


def test_function_tool_round_trip(client: openai.OpenAI, gateway: Proc, scripted: Proc) -> None:
    with observing(scripted, gateway) as seen:
        first = client.responses.create(model=MODEL, input="What is the weather in Paris?", tools=[WEATHER_TOOL])
        [call] = [item for item in first.output if item.type == "function_call"]
        assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
        assert call.call_id and call.id
        history: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}, *first.output]
        history.append({"type": "function_call_output", "call_id": call.call_id, "output": WEATHER})
        second = client.responses.create(model=MODEL, input=history, tools=[WEATHER_TOOL])
    assert second.output_text == WEATHER_TEXT.format(result=WEATHER)
    upstream = seen.forwarded[-1]["messages"]
    calls = [m for m in upstream if m["role"] == "assistant" and m.get("tool_calls")]
    assert calls and calls[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    results = [m for m in upstream if m["role"] == "tool"]
    assert results == [{"role": "tool", "tool_call_id": calls[0]["tool_calls"][0]["id"], "content": WEATHER}]
    assert seen.forwarded[0]["tools"][0]["function"]["name"] == "get_weather"


def test_streamed_function_call_has_argument_events_and_matching_ids(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _collapsed([e.type for e in events]) == CALL_EVENTS, [e.type for e in events]
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(arguments) == json.loads(done.arguments) == {"city": "Paris"}
    [call] = final.output
    assert call.type == "function_call" and call.name == "get_weather"
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.id == call.id == done.item_id
    assert added.item.call_id == call.call_id


def test_previous_response_id_continues_a_stored_conversation(
    client: openai.OpenAI, gateway: Proc, scripted: Proc
) -> None:
    first = client.responses.create(model=MODEL, input="My name is Ada.", store=True)
    with observing(scripted, gateway) as seen:
        second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id)
    assert second.output_text == HELLO and second.previous_response_id == first.id
    messages = seen.forwarded[-1]["messages"]
    texts = [(m["role"], json.dumps(m.get("content"))) for m in messages]
    assert [r for r, _ in texts][-3:] == ["user", "assistant", "user"], texts
    assert "My name is Ada." in texts[-3][1] and HELLO in texts[-2][1] and "What is my name?" in texts[-1][1]


def test_a_stored_response_can_be_retrieved_and_deleted(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input="Say hello.", store=True)
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == HELLO
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_parse_returns_the_structured_output(client: openai.OpenAI, gateway: Proc, scripted: Proc) -> None:
    with observing(scripted, gateway) as seen:
        parsed = client.responses.parse(model=MODEL, input="Forecast for Paris.", text_format=Forecast)
    assert parsed.output_parsed == Forecast.model_validate(FORECAST)
    schema = forwarded_schema(seen.forwarded[-1])
    assert schema is not None, f"the schema was not passed to the backend: {sorted(seen.forwarded[-1])}"
    assert "days" in json.dumps(schema)


def _reasoning_text(item: Any) -> str:
    """A reasoning item's text, whether the server put it in `summary` or in `content` (reasoning_text)."""
    parts = [*(getattr(item, "summary", None) or []), *(getattr(item, "content", None) or [])]
    return "".join(part.text for part in parts)


def test_reasoning_comes_back_as_a_reasoning_item_that_can_be_passed_back(client: openai.OpenAI) -> None:
    question = "Think first, then say hello."
    first = client.responses.create(model=MODEL, input=question)
    assert [item.type for item in first.output] == ["reasoning", "message"]
    assert _reasoning_text(first.output[0]) == THOUGHT and first.output_text == HELLO
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens > 0
    # as Codex does: the reasoning item goes back verbatim in the next turn's input
    history: list[Any] = [{"role": "user", "content": question}, *first.output, {"role": "user", "content": "Again."}]
    second = client.responses.create(model=MODEL, input=history)
    assert second.output_text == HELLO


def test_streamed_reasoning_has_its_own_item_before_the_message(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input="Think first, then say hello.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [(e.output_index, e.item.type) for e in events if e.type == "response.output_item.added"]
    assert added == [(0, "reasoning"), (1, "message")]
    reasoning_deltas = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta")
    assert "".join(e.delta for e in events if e.type in reasoning_deltas) == THOUGHT
    done = [e.item.id for e in events if e.type == "response.output_item.done"]
    assert done == [item.id for item in final.output] and final.output_text == HELLO


def test_hosted_tools_are_refused_with_a_400_naming_the_tool(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="Search the web.", tools=[{"type": "file_search"}])
    assert "file_search" in str(err.value)
