"""Structured outputs and tool calls through a running `owstack serve` on the embedded model, with the
official `openai` client."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from procs import Proc

pytestmark = pytest.mark.slow


class City(BaseModel):
    name: str = Field(max_length=24)
    country: str = Field(max_length=24)
    population_millions: int = Field(ge=0, le=40)


def client(gw: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=600)


def test_parse_returns_a_parsed_object(embedded_gateway: Proc) -> None:
    completion = client(embedded_gateway).chat.completions.parse(
        model="edge",
        messages=[{"role": "user", "content": "Describe Paris as JSON."}],
        response_format=City,
        max_tokens=80,
        temperature=0,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert 0 <= parsed.population_millions <= 40 and len(parsed.name) <= 24


def test_a_crashing_pattern_is_a_400_naming_it_and_the_gateway_lives(embedded_gateway: Proc) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}},
        },
    }
    with pytest.raises(openai.BadRequestError) as info:
        client(embedded_gateway).chat.completions.create(
            model="edge",
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],
            tool_choice="required",
            max_tokens=8,
        )
    assert info.value.body["param"] == "tools[0].function.parameters#/properties/a/pattern"  # type: ignore[index]
    assert "back-reference" in info.value.body["message"]  # type: ignore[index]
    assert httpx.get(embedded_gateway.url + "/healthz").status_code == 200


def test_a_streamed_forced_call_has_no_markup_in_content(embedded_gateway: Proc) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"item": {"$ref": "#/$defs/Item"}},
                "required": ["item"],
                "$defs": {
                    "Item": {
                        "type": "object",
                        "properties": {"sku": {"type": "string", "maxLength": 10}},
                        "required": ["sku"],
                    }
                },
            },
        },
    }
    stream = client(embedded_gateway).chat.completions.create(
        model="edge",
        messages=[{"role": "user", "content": "Look up item A1."}],
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        max_tokens=60,
        temperature=0,
        stream=True,
    )
    chunks = [c for c in stream if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "lookup" and calls[0].id
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_logprobs_and_stop_reason_reach_the_client(embedded_gateway: Proc) -> None:
    raw = httpx.post(
        embedded_gateway.base_url + "/chat/completions",
        json={
            "model": "edge",
            "messages": [{"role": "user", "content": "Count from 1 to 10: 1, 2, 3,"}],
            "max_tokens": 40,
            "temperature": 0,
            "stop": ["6"],
            "logprobs": True,
            "top_logprobs": 2,
        },
        timeout=600,
    ).json()
    choice = raw["choices"][0]
    assert choice["stop_reason"] == "6" and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["content"] and len(choice["logprobs"]["content"][0]["top_logprobs"]) == 2
