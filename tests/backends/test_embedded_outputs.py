"""The embedded engine with the real model: structured outputs, forced tools, logprobs, seeds, stop reasons,
and a worker that survives a failing job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest

from owstack.backends import embedded_sampler
from owstack.errors import InvalidRequest, UpstreamError
from owstack.types import ChatRequest

pytestmark = pytest.mark.slow

LOCATION = {
    "type": "object",
    "properties": {"where": {"$ref": "#/$defs/Place"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["where", "days"],
    "$defs": {
        "Place": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}}, "required": ["city"]}
    },
}
TOOLS = [{"type": "function", "function": {"name": "forecast", "parameters": LOCATION}}]


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    from owstack.backends.llamacpp import LlamaCppBackend

    loop = asyncio.new_event_loop()
    backend = LlamaCppBackend.from_catalog("smollm2-135m-instruct", n_threads=2)
    loop.run_until_complete(backend.start())
    backend.run = loop.run_until_complete  # type: ignore[attr-defined]
    yield backend
    loop.run_until_complete(backend.aclose())
    loop.close()


def ask(text: str, **params: Any) -> ChatRequest:
    return ChatRequest(
        model="edge",
        messages=[{"role": "user", "content": text}],
        params={"max_tokens": 48, "temperature": 0, **params},
    )


def collect(engine: Any, request: ChatRequest) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [chunk async for chunk in engine.stream(request)]

    return engine.run(run())  # type: ignore[no-any-return]


def test_json_schema_output_validates(engine: Any) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
        },
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    body = engine.run(engine.complete(ask("Describe a person.", response_format=fmt))).body
    value = orjson.loads(body["choices"][0]["message"]["content"])
    jsonschema.validate(value, {**schema, "required": ["name", "age"], "additionalProperties": False})


def test_a_forced_tool_with_defs_streams_a_valid_call_and_no_markup(engine: Any) -> None:
    chunks = collect(engine, ask("Weather in Paris this week?", tools=TOOLS, tool_choice="required", max_tokens=64))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == ""
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "forecast"
    arguments = "".join(tc["function"].get("arguments", "") for tc in calls)
    jsonschema.validate(orjson.loads(arguments), LOCATION)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_forced_call_cut_by_max_tokens_ends_as_a_call_with_length(engine: Any) -> None:
    body = engine.run(
        engine.complete(ask("Weather in Paris?", tools=TOOLS, tool_choice="required", max_tokens=20))
    ).body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "forecast"
    with pytest.raises(InvalidRequest) as info:
        engine.run(engine.complete(ask("Weather?", tools=TOOLS, tool_choice="required", max_tokens=3)))
    assert info.value.param == "max_tokens"


def test_a_back_reference_pattern_is_a_400_and_the_engine_serves_on(engine: Any) -> None:
    bad = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}},
            },
        }
    ]
    with pytest.raises(InvalidRequest) as info:
        engine.run(engine.complete(ask("hi", tools=bad, tool_choice="required")))
    assert info.value.param == "tools[0].function.parameters#/properties/a/pattern"
    assert engine.run(engine.complete(ask("Say hi.", max_tokens=4))).body["choices"][0]["message"]["content"]


def test_logprobs_in_whole_responses_and_stream_chunks(engine: Any) -> None:
    body = engine.run(engine.complete(ask("Say hi.", max_tokens=4, logprobs=True, top_logprobs=3))).body
    entries = body["choices"][0]["logprobs"]["content"]
    assert len(entries) == body["usage"]["completion_tokens"] == 4
    assert "".join(e["token"] for e in entries) == body["choices"][0]["message"]["content"]
    for entry in entries:
        assert entry["logprob"] <= 0 and len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0]["logprob"] >= entry["logprob"]  # greedy: the pick is the best one
        assert bytes(entry["bytes"]).decode("utf-8", "replace") == entry["token"]
    chunks = collect(engine, ask("Say hi.", max_tokens=4, logprobs=True))
    streamed = [e for c in chunks if c["choices"] for e in (c["choices"][0].get("logprobs") or {}).get("content", [])]
    assert [e["token"] for e in streamed] == [e["token"] for e in entries]
    plain = engine.run(engine.complete(ask("Say hi.", max_tokens=2))).body
    assert plain["choices"][0]["logprobs"] is None


def test_the_matched_stop_string_is_reported(engine: Any) -> None:
    body = engine.run(engine.complete(ask("Count from 1 to 10: 1, 2, 3,", stop=["6", "zzz"], max_tokens=40))).body
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["stop_reason"] == "6"
    assert "6" not in choice["message"]["content"]
    chunks = collect(engine, ask("Count from 1 to 10: 1, 2, 3,", stop=["6"], max_tokens=40))
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"])
    assert final["choices"][0]["stop_reason"] == "6"


@pytest.mark.timeout(1200)
def test_the_same_seed_gives_the_same_answer_whatever_ran_before(engine: Any) -> None:
    seeded = ask("Tell me a story about a cat.", temperature=1.0, seed=1234, max_tokens=16)
    first = engine.run(engine.complete(seeded)).body["choices"][0]["message"]["content"]
    engine.run(engine.complete(ask("Tell me a story about a dog and a river.", temperature=1.0, max_tokens=12)))
    engine.run(engine.complete(ask("Tell me a story about a cat.", temperature=1.0, seed=99, max_tokens=4)))
    collect(engine, ask("Weather?", tools=TOOLS, tool_choice="required", max_tokens=40))
    again = engine.run(engine.complete(seeded)).body["choices"][0]["message"]["content"]
    assert again == first
    story = ask("Tell me a story about a cat.", temperature=1.5, max_tokens=6)
    unseeded = {engine.run(engine.complete(story)).body["choices"][0]["message"]["content"] for _ in range(5)}
    assert len(unseeded) > 1  # a request without a seed does not inherit the last one


@pytest.mark.timeout(900)
def test_a_failing_job_is_a_typed_error_and_the_worker_serves_on(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = embedded_sampler.Sampler.sample

    def broken(self: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("injected")
        return real(self)

    monkeypatch.setattr(embedded_sampler.Sampler, "sample", broken)
    with pytest.raises(UpstreamError) as info:
        engine.run(engine.complete(ask("Say hi.", max_tokens=8)))
    assert info.value.code == "engine_error"
    with pytest.raises(UpstreamError):
        calls["n"] = 0
        collect(engine, ask("Say hi.", max_tokens=8))
    monkeypatch.undo()
    assert engine.run(engine.complete(ask("Say hi.", max_tokens=4))).body["choices"][0]["message"]["content"]
    assert engine.queue_depth == 0
