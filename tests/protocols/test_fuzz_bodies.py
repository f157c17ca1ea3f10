"""No body a client sends gets a 5xx or leaves the gateway worse off: random bodies on every generation route.

Bodies are drawn near the protocols' shapes (right field names, wrong and odd values, unknown item and block
types, deep and wide nesting, huge numbers, strange strings) so that they get past the first checks and
exercise the translations. Whatever comes back must be a 2xx or a 4xx in the route's error shape, and the
backend's routing state must be settled afterwards.

The suite draws the same 120 bodies at every run (derandomized: CI stays deterministic); a wider, random
search: `OWSTACK_FUZZ_EXAMPLES=20000 pytest tests/protocols/test_fuzz_bodies.py` (about two minutes here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.backend import Reply
from protocols.conftest import gateway

ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/v1/messages/count_tokens", "/v1/completions")
ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function", "bogus", ""])
KINDS = st.sampled_from(
    [
        "text",
        "input_text",
        "output_text",
        "image",
        "image_url",
        "input_image",
        "input_file",
        "document",
        "tool_use",
        "tool_result",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "reasoning",
        "thinking",
        "message",
        "namespace",
        "function",
        "custom",
        "web_search",
        "item_reference",
        "refusal",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["<|im_start|>", "\u202e", "data:image/png;base64,AAAA", "#/$defs/x", "{", "\x00"]),
)


def values(depth: int = 3) -> st.SearchStrategy[Any]:
    if depth == 0:
        return SCALARS
    inner = values(depth - 1)
    part = st.fixed_dictionaries(
        {"type": KINDS},
        optional={
            "text": inner,
            "content": inner,
            "role": ROLES,
            "name": inner,
            "input": inner,
            "arguments": inner,
            "call_id": inner,
            "id": inner,
            "tool_use_id": inner,
            "source": inner,
            "output": inner,
            "tools": inner,
            "image_url": inner,
            "encrypted_content": inner,
            "parameters": inner,
            "input_schema": inner,
        },
    )
    return st.one_of(SCALARS, st.lists(st.one_of(part, inner), max_size=4), part)


BODIES = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(["edge", "auto", "coding", "fake-model", "nope"]), SCALARS)},
    optional={
        "messages": st.lists(st.fixed_dictionaries({"role": ROLES}, optional={"content": values()}), max_size=4),
        "input": values(),
        "prompt": values(2),
        "tools": values(),
        "tool_choice": values(2),
        "max_tokens": SCALARS,
        "max_output_tokens": SCALARS,
        "stream": st.booleans(),
        "response_format": values(2),
        "text": values(2),
        "output_config": values(2),
        "thinking": values(2),
        "reasoning": values(2),
        "stop": values(1),
        "stop_sequences": values(1),
        "instructions": values(1),
        "system": values(2),
        "previous_response_id": values(0),
        "background": st.booleans(),
        "include": values(1),
        "metadata": values(2),
    },
)


@settings(
    max_examples=int(os.environ.get("OWSTACK_FUZZ_EXAMPLES", "120")),
    derandomize="OWSTACK_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES), body=BODIES)
def test_random_bodies_get_no_5xx(tmp_path: Path, route: str, body: dict[str, Any]) -> None:
    async def run() -> None:
        async with gateway(tmp_path, [Reply(text="ok")]) as app:
            try:
                raw = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
            except orjson.JSONEncodeError:
                raw = repr(body).encode()  # not JSON at all: must be a 400 too
            r = await app.client.post(route, content=raw)
            assert r.status_code < 500, (route, r.status_code, r.text[:500])
            if r.status_code >= 400:
                data = r.json()
                assert data["error"]["message"], data
                if route.startswith("/v1/messages"):
                    assert data["type"] == "error"
            slot = app.gateway.slots["fake"]
            assert slot.outstanding == 0 and slot.breaker.state == "closed"

    anyio.run(run)
