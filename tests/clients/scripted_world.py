"""The scripted model's behaviour in the client tests, and helpers to see what the gateway forwarded.

SCRIPT is the model's whole behaviour in these tests, one rule per scenario (first match wins; the format is
in tests/fakes/agent_script.py); the tests assert on the constants defined here, so a test can only pass if
its request went through the gateway to the upstream and the upstream's answer came back through it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel

from procs import ROOT, Proc

sys.path.insert(0, str(ROOT / "tests" / "fakes"))
from agent_script import DEFAULT_RULES
from agent_script import FILE_NAME as FILE_NAME  # the agent loop's file and answer, re-exported
from agent_script import FILE_TEXT as FILE_TEXT
from agent_script import FINAL as FINAL

MODEL = "scripted"  # the backend's model id, which clients may name directly
WEATHER = "sunny, 21 C"
WEATHER_TEXT = "The weather in Paris: {result}"
HELLO = "Hello from the scripted model."
THOUGHT = "The user wants a greeting; one sentence is enough."
COUNTING = "one two three STOP four five"
FORECAST = {"city": "Paris", "days": [{"day": "monday", "high_c": 21}, {"day": "tuesday", "high_c": 19}]}
PERSON = {"name": "Ada Lovelace", "age": 36, "address": {"city": "London", "street": "St James's Square"}}

SCRIPT: list[dict[str, Any]] = [
    # a function tool round trip: call get_weather, then quote its result
    {"when": {"tool": "get_weather", "results": 0}, "then": {"tool": "get_weather", "arguments": {"city": "Paris"}}},
    {"when": {"tool": "get_weather", "results": 1}, "then": {"text": WEATHER_TEXT}},
    # structured output (the tests check separately that the schema reached the upstream, in whichever field)
    {"when": {"user_contains": "Forecast for"}, "then": {"text": json.dumps(FORECAST)}},
    # instructor's default mode: a forced tool whose parameters are a nested pydantic model ($defs/$ref)
    {"when": {"tool_choice": "Person"}, "then": {"tool": "Person", "arguments": PERSON}},
    {"when": {"user_contains": "Count"}, "then": {"text": COUNTING}},
    # a reasoning model: reasoning first (vLLM's reasoning_content), then the answer
    {"when": {"user_contains": "Think first"}, "then": {"reasoning": THOUGHT, "text": HELLO}},
    # the agent CLIs: write a file with the shell tool, read it back, answer quoting it
    *DEFAULT_RULES[:-1],
    {"then": {"text": HELLO}},
]


class Day(BaseModel):
    day: str
    high_c: int


class Forecast(BaseModel):
    """FORECAST's model: nested, so its JSON schema has `$defs` and a `$ref`."""

    city: str
    days: list[Day]


def forwarded_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a forwarded chat request carries, in whichever field a vLLM backend accepts it."""
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return dict(fmt["json_schema"].get("schema") or {})
    guided = body.get("guided_json") or (body.get("structured_outputs") or {}).get("json")
    return json.loads(guided) if isinstance(guided, str) else guided


def scripted_backend(upstream: Proc) -> dict[str, Any]:
    """A normal vLLM backend entry pointing at the scripted upstream."""
    return {"engine": "vllm", "url": upstream.base_url, "model": MODEL, "jurisdiction": "local"}


@dataclass
class Seen:
    """What happened between a test's start and end: the bodies forwarded upstream, the statuses answered."""

    forwarded: list[dict[str, Any]] = field(default_factory=list)
    access: list[str] = field(default_factory=list)

    def refused(self) -> list[str]:
        """Access-log lines with a 4xx or 5xx status: a client may have recovered, a test should not."""
        return [line for line in self.access if re.search(r"status=[45]\d\d", line)]


@contextlib.contextmanager
def observing(upstream: Proc, gateway: Proc) -> Iterator[Seen]:
    """Seen for the block (filled in when it ends): what the upstream received and the gateway's access log."""
    before = len(httpx.get(upstream.url + "/requests", timeout=30).json())
    log_at = len(gateway.log())
    seen = Seen()
    try:
        yield seen
    finally:
        seen.forwarded.extend(httpx.get(upstream.url + "/requests", timeout=30).json()[before:])
        seen.access.extend(line for line in gateway.log()[log_at:].splitlines() if "owstack.access" in line)
