"""Structured output with the clients people use for it: openai `.parse` and instructor, nested pydantic models.

Through the scripted vLLM backend the answer is known, so the tests check the parse and that the schema (with
its `$defs`/`$ref`) reached the backend. On the embedded model (SmolLM2-135M), nothing but the gateway's own
constrained decoding can make the answer fit the schema, so a parse that succeeds there proves enforcement.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import instructor
import openai
import pytest
from pydantic import BaseModel
from scripted_world import FORECAST, MODEL, PERSON, Forecast, forwarded_schema, observing

from procs import Proc


class Address(BaseModel):
    city: str
    street: str


class Person(BaseModel):
    name: str
    age: int
    address: Address


class Place(BaseModel):
    country: Literal["france", "italy", "spain"]
    coastal: bool


class Trip(BaseModel):
    destination: Place
    nights: int


def _client(gw: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="sk-test", max_retries=0, timeout=300)


def test_chat_completions_parse_through_a_vllm_backend(gateway: Proc, scripted: Proc) -> None:
    with observing(scripted, gateway) as seen:
        completion = _client(gateway).chat.completions.parse(
            model=MODEL, messages=[{"role": "user", "content": "Forecast for Paris."}], response_format=Forecast
        )
    assert completion.choices[0].message.parsed == Forecast.model_validate(FORECAST)
    schema = forwarded_schema(seen.forwarded[-1])
    assert schema is not None and "$defs" in schema and "Day" in json.dumps(schema["$defs"])


def test_instructor_nested_model_through_a_vllm_backend(gateway: Proc, scripted: Proc) -> None:
    client = instructor.from_openai(_client(gateway))
    with observing(scripted, gateway) as seen:
        person = client.chat.completions.create(
            model=MODEL,
            response_model=Person,
            messages=[{"role": "user", "content": "Extract: Ada Lovelace, 36, St James's Square, London."}],
            max_retries=0,
        )
    assert person.model_dump() == PERSON
    [body] = seen.forwarded
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    parameters: dict[str, Any] = body["tools"][0]["function"]["parameters"]
    assert parameters["properties"]["address"] == {"$ref": "#/$defs/Address"} and "Address" in parameters["$defs"]


@pytest.mark.slow
def test_chat_completions_parse_on_the_embedded_model(embedded_gateway: Proc) -> None:
    completion = _client(embedded_gateway).chat.completions.parse(
        model="edge",
        messages=[{"role": "user", "content": "Plan a trip: pick a country and a number of nights."}],
        response_format=Trip,
        max_tokens=160,
        temperature=0,
    )
    trip = completion.choices[0].message.parsed
    assert isinstance(trip, Trip), completion.choices[0].message.content


@pytest.mark.slow
def test_instructor_nested_model_on_the_embedded_model(embedded_gateway: Proc) -> None:
    client = instructor.from_openai(_client(embedded_gateway))
    trip = client.chat.completions.create(
        model="edge",
        response_model=Trip,
        messages=[{"role": "user", "content": "Plan a trip: pick a country and a number of nights."}],
        max_tokens=160,
        temperature=0,
        max_retries=0,
    )
    assert isinstance(trip, Trip) and trip.destination.country in ("france", "italy", "spain")
