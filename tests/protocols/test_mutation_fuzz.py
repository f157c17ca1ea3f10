"""Full, valid requests of every protocol with a few of their nodes replaced: no 5xx, the error in the route's
shape, routing state settled.

`test_fuzz_bodies.py` draws bodies near the protocols' shapes from scratch; this one starts from complete
requests (every field a client may send: tools with schemas, tool calls and results, images, documents,
thinking, structured outputs, stream options, metadata) and replaces one to three nodes anywhere in them with
values of the wrong kind, deletes fields or repeats list items, so that the rest of the body stays valid and
the odd value reaches the code that reads it. It found `/v1/messages/count_tokens` reading `metadata`, a
field it does not validate (a 500). The same 1,500 bodies at every run (about 3 s); a wider search:
`OWSTACK_FUZZ_EXAMPLES=20000 pytest tests/protocols/test_mutation_fuzz.py`.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from fakes.backend import Reply
from protocols.conftest import gateway

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "integer"}}},
    "required": ["a"],
    "additionalProperties": False,
}
IMAGE = "data:image/png;base64,iVBORw0KGgo="
CHAT = {
    "model": "edge",
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": IMAGE}}],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":"x"}'}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "result"},
        {"role": "user", "content": "go on"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "f", "description": "d", "parameters": SCHEMA, "strict": True}}
    ],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA, "strict": True}},
    "stream_options": {"include_usage": True},
    "stop": ["\n\n"],
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
    "seed": 1,
    "user": "u",
    "metadata": {"k": "v"},
    "parallel_tool_calls": True,
    "reasoning_effort": "low",
    "max_completion_tokens": 16,
    "temperature": 0.2,
}
RESPONSES = {
    "model": "edge",
    "instructions": "be brief",
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": IMAGE}],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":"x"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "result"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}]},
        {"role": "user", "content": "go on"},
    ],
    "tools": [{"type": "function", "name": "f", "description": "d", "parameters": SCHEMA, "strict": True}],
    "tool_choice": {"type": "function", "name": "f"},
    "text": {"format": {"type": "json_schema", "name": "s", "schema": SCHEMA, "strict": True}},
    "store": False,
    "max_output_tokens": 32,
    "reasoning": {"effort": "low", "summary": "auto"},
    "truncation": "auto",
    "metadata": {"k": "v"},
    "include": ["reasoning.encrypted_content"],
}
MESSAGES = {
    "model": "edge",
    "max_tokens": 32,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}]}],
        },
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": SCHEMA}],
    "tool_choice": {"type": "tool", "name": "f"},
    "stop_sequences": ["x"],
    "temperature": 0.2,
    "top_k": 5,
    "metadata": {"user_id": "u"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
COMPLETIONS = {"model": "edge", "prompt": ["hi", "there"], "max_tokens": 8, "suffix": "x", "logprobs": 2, "stop": "\n"}
TEMPLATES = [
    ("/v1/chat/completions", CHAT),
    ("/v1/responses", RESPONSES),
    ("/v1/messages", MESSAGES),
    ("/v1/messages/count_tokens", MESSAGES),
    ("/v1/completions", COMPLETIONS),
]
ODD: list[Any] = [
    None, True, 0, -1, 2**63, -(2**70), 1e308, -0.0, "", "x", "\x00", "<|im_start|>", "a" * 3000, [], [None], [[]], [1],
    {}, {"type": None}, {"type": "text"}, {"type": "function"}, [{"type": "text", "text": None}], {"": ""},
    "data:image/png;base64,!!!", "file:///etc/passwd", {"type": "object", "properties": 5}, {"anyOf": None},
    {"$ref": "#"}, {"a": {"b": [{}]}},
]  # fmt: skip


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


def mutated(template: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    body = copy.deepcopy(template)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent: Any = body
        for key in path[:-1]:
            parent = parent[key]
        roll = rng.random()
        if roll < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif roll < 0.25 and isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(parent)))
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD))
    if rng.random() < 0.2:
        body["stream"] = True
    return body


async def test_mutated_full_requests_get_no_5xx(tmp_path: Path) -> None:
    examples = int(os.environ.get("OWSTACK_FUZZ_EXAMPLES", "1500"))
    rng = random.Random(None if "OWSTACK_FUZZ_EXAMPLES" in os.environ else 20261203)
    statuses: list[int] = []
    async with gateway(tmp_path, [Reply(text='{"a":"ok"}')]) as app:
        for _ in range(examples):
            route, template = rng.choice(TEMPLATES)
            body = mutated(template, rng)
            r = await app.client.post(route, content=json.dumps(body).encode())
            statuses.append(r.status_code)
            assert r.status_code < 500, (route, r.status_code, r.text[:500], body)
            if r.status_code >= 400:
                data = r.json()
                assert data["error"]["message"], data
                if route.startswith("/v1/messages"):
                    assert data["type"] == "error", data
        slot = app.gateway.slots["fake"]
        assert slot.outstanding == 0 and slot.breaker.state == "closed"
    # the mutations leave most bodies valid or refuse them: both kinds must occur for the test to mean anything
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)
