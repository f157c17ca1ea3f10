"""What every endpoint shares, in process: body limits, settling on every error path, CORS, Host and
content-type checks against web pages, the route table."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from fakes.backend import Reply
from owstack.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from owstack.protocols.body import MAX_DEPTH
from protocols.conftest import gateway

pytestmark = pytest.mark.anyio


def nested(depth: int) -> bytes:
    """JSON nested `depth` levels deep (written out: orjson itself will not serialise past 254 levels)."""
    return b'{"k":[' * (depth // 2) + b'"x"' + b"]}" * (depth // 2)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
async def test_deep_nesting_is_a_400_at_parse_and_nothing_is_left_outstanding(tmp_path: Path, path: str) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        for depth in (MAX_DEPTH + 1, 300, 1000):
            body = b'{"model": "edge", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "extra": '
            r = await app.client.post(path, content=body + nested(depth) + b"}")
            assert r.status_code == 400, (depth, r.text)
            assert "levels deep" in r.text
        ok = await app.client.post(
            path, json={"model": "edge", "max_tokens": 5, "input": "x", "messages": [{"role": "user", "content": "x"}]}
        )
        slot = app.gateway.slots["fake"]
    assert ok.status_code == 200 and app.backend.requests  # a fine request still goes through
    assert slot.outstanding == 0 and slot.breaker.state == "closed"


async def test_random_failures_always_settle_the_backend(tmp_path: Path) -> None:
    """A property test over the call path: whatever an attempt raises (typed errors, retryable or not, and
    exceptions the code did not expect), outstanding counts return to zero and no breaker stays half-open."""
    rng = random.Random(20261202)
    kinds: list[Any] = [
        UpstreamError("boom"),
        UpstreamTimeout("slow"),
        InvalidRequest("upstream said no"),
        RuntimeError("a bug"),
        ValueError("another bug"),
        None,
    ]
    replies = []
    for _ in range(60):
        kind = rng.choice(kinds)
        if kind is None:
            replies.append(Reply(text="fine"))
        elif rng.random() < 0.5 and isinstance(kind, UpstreamError | UpstreamTimeout):
            replies.append(Reply(text="part", fail_mid_stream=kind))
        else:
            replies.append(Reply(error=kind))  # type: ignore[arg-type]
    statuses = set()
    async with gateway(tmp_path, replies, routing={"breaker": {"failure_threshold": 1000}}) as app:
        for _ in replies:
            stream = rng.random() < 0.5
            body = {"model": "edge", "messages": [{"role": "user", "content": "x"}], "stream": stream}
            r = await app.client.post("/v1/chat/completions", json=body)
            statuses.add(r.status_code)
            assert r.status_code != 500 or "quote request id" in r.text
        slot = app.gateway.slots["fake"]
        assert slot.outstanding == 0
        assert slot.breaker.state == "closed"
    assert {200, 400, 500} <= statuses


async def test_cors_is_off_by_default_and_follows_the_allow_list(tmp_path: Path) -> None:
    origin = {"origin": "https://console.example"}
    preflight = {**origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        plain = await app.client.get("/v1/models", headers=origin)
        refused = await app.client.options("/v1/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in plain.headers
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    server = {"cors_allow_origins": ["https://console.example"]}
    async with gateway(tmp_path, [Reply(text="x")], server=server) as app:
        allowed = await app.client.options("/v1/chat/completions", headers=preflight)
        other = await app.client.options(
            "/v1/chat/completions", headers={**preflight, "origin": "https://evil.example"}
        )
        answer = await app.client.post(
            "/v1/chat/completions",
            json={"model": "edge", "messages": [{"role": "user", "content": "x"}]},
            headers=origin,
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://console.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "authorization"
    assert other.status_code == 403
    assert answer.headers["access-control-allow-origin"] == "https://console.example"
    assert "x-request-id" in answer.headers["access-control-expose-headers"]


async def test_open_mode_refuses_foreign_hosts_and_non_json_bodies(tmp_path: Path) -> None:
    body = orjson.dumps({"model": "edge", "messages": [{"role": "user", "content": "x"}]})
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        rebound = await app.client.post("/v1/chat/completions", content=body, headers={"host": "attacker.example:8000"})
        form = await app.client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        text = await app.client.post("/v1/responses", content=body, headers={"content-type": "text/plain"})
        local = await app.client.post("/v1/chat/completions", content=body, headers={"host": "localhost:8000"})
        v6 = await app.client.post("/v1/chat/completions", content=body, headers={"host": "[::1]:8000"})
    assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_not_allowed"
    assert form.status_code == 415 and text.status_code == 415
    assert local.status_code == 200 and v6.status_code == 200
    assert len(app.backend.requests) == 2  # the refused ones never reached the backend


async def test_unknown_paths_and_methods(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        missing = await app.client.get("/v1/nope")
        method = await app.client.get("/v1/chat/completions")
        slashed = await app.client.get("/v1/models/nvidia/Nemotron")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert method.status_code == 405 and "POST" in method.json()["error"]["message"]
    assert slashed.status_code == 404 and slashed.json()["error"]["code"] == "model_not_found"
