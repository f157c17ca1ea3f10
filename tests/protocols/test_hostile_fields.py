"""Fields of the wrong kind below the top level of a body, compressed bodies, and bugs outside the generation
handler: each is a 4xx (or a 500 that names only the request id) in the endpoint's own error shape, and
nothing reaches a backend."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from fakes.backend import Reply
from protocols.conftest import gateway

pytestmark = pytest.mark.anyio
RESPONSES = {"model": "edge", "input": "x"}

NESTED: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/responses", {**RESPONSES, "input": [{"type": "reasoning", "content": 5}]}, "input[0].content"),
    ("/v1/responses", {**RESPONSES, "input": [{"type": "reasoning", "summary": {"text": "x"}}]}, "input[0].summary"),
    ("/v1/responses", {**RESPONSES, "tools": [{"type": "namespace", "name": "n", "tools": 5}]}, "tools[0].tools"),
    ("/v1/responses", {**RESPONSES, "tools": [{"type": "namespace", "name": "n", "tools": [5]}]}, "tools[0].tools[0]"),
    ("/v1/responses", {**RESPONSES, "tools": [{"type": "custom", "name": "c", "format": 5}]}, "tools[0].format"),
    (
        "/v1/responses",
        {**RESPONSES, "background": True, "input": [{"type": "reasoning", "content": 5}]},
        "input[0].content",
    ),
    ("/v1/completions", {"model": "edge", "prompt": "x", "stream": True, "stream_options": 5}, "stream_options"),
]


@pytest.mark.parametrize(("path", "body", "param"), NESTED, ids=[p for _, _, p in NESTED])
async def test_nested_fields_of_the_wrong_kind_are_400_naming_them(
    tmp_path: Path, path: str, body: dict[str, Any], param: str
) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        r = await app.client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert not app.backend.requests


@pytest.mark.parametrize(
    "extra",
    [{"metadata": [1]}, {"metadata": "u"}, {"stop_sequences": 5}, {"temperature": "hot"}, {"max_tokens": {}}],
    ids=["metadata-list", "metadata-str", "stop_sequences", "temperature", "max_tokens"],
)
async def test_count_tokens_ignores_the_fields_it_does_not_take_whatever_their_shape(
    tmp_path: Path, extra: dict[str, Any]
) -> None:
    """Fields count_tokens does not validate (those of /v1/messages only) are not read: a `metadata` list was
    a 500 (found by a structure-aware fuzz of every endpoint)."""
    count = {"model": "edge", "messages": [{"role": "user", "content": "hi"}], **extra}
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        r = await app.client.post("/v1/messages/count_tokens", json=count)
        plain = await app.client.post("/v1/messages/count_tokens", json={k: count[k] for k in ("model", "messages")})
    assert r.status_code == 200, r.text
    assert r.json() == plain.json() and r.json()["input_tokens"] > 0
    assert not app.backend.requests


async def test_gzip_and_deflate_bodies_are_read_and_other_codings_are_415(tmp_path: Path) -> None:
    body = orjson.dumps({"model": "edge", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    bomb = gzip.compress(b" " * (17 * 1024 * 1024))  # 17 MB of spaces in ~17 KB: over the 16 MB limit
    async with gateway(tmp_path, [Reply(text="hi")]) as app:
        gzipped = await app.client.post(
            "/v1/messages", content=gzip.compress(body), headers={"content-encoding": "gzip"}
        )
        deflated = await app.client.post(
            "/v1/chat/completions", content=zlib.compress(body), headers={"content-encoding": "deflate"}
        )
        brotli = await app.client.post("/v1/messages", content=body, headers={"content-encoding": "br"})
        broken = await app.client.post("/v1/chat/completions", content=body, headers={"content-encoding": "gzip"})
        cut = await app.client.post(
            "/v1/chat/completions", content=gzip.compress(body)[:-12], headers={"content-encoding": "gzip"}
        )
        exploded = await app.client.post("/v1/responses", content=bomb, headers={"content-encoding": "gzip"})
    assert gzipped.status_code == 200 and gzipped.json()["content"][0]["text"] == "hi"
    assert deflated.status_code == 200
    assert brotli.status_code == 415 and brotli.json()["type"] == "error"  # Anthropic's shape on its path
    assert "Content-Encoding" in brotli.json()["error"]["message"]
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_encoding"
    assert cut.status_code == 400 and cut.json()["error"]["code"] == "invalid_encoding"
    assert exploded.status_code == 413 and exploded.headers["connection"] == "close"
    assert len(app.backend.requests) == 2


async def test_a_bug_outside_the_generation_handler_is_a_500_in_the_api_shape(tmp_path: Path) -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("a bug with a secret in its message")

    count = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        app.gateway.router.resolve = broken  # type: ignore[method-assign]
        r = await app.client.post("/v1/messages/count_tokens", json=count)
        after = await app.client.get("/v1/models")
    assert r.status_code == 500
    doc = r.json()
    assert doc["type"] == "error" and doc["error"]["type"] == "api_error"
    assert r.headers["x-request-id"] in doc["error"]["message"] and "secret" not in r.text
    assert after.status_code == 200


async def test_a_reasoning_item_that_inflates_past_its_limit_is_a_400_not_gigabytes(tmp_path: Path) -> None:
    """owstack packs a turn's reasoning into `encrypted_content` (zlib); a client's own value of 64 KiB inflated
    to 64 MiB (and one within the body limit to gigabytes) before the request was even validated."""
    import base64

    from owstack.protocols.responses.request import MAX_REASONING_BYTES, REASONING_PREFIX, encode_reasoning

    bomb = zlib.compress(b"\0" * (MAX_REASONING_BYTES + 1), 9)
    value = REASONING_PREFIX + base64.urlsafe_b64encode(bomb).decode()
    assert len(value) < 64 * 1024
    items = [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": value},
        {"role": "user", "content": "go on"},
    ]
    async with gateway(tmp_path, [Reply(text="ok"), Reply(text="ok")]) as app:
        r = await app.client.post("/v1/responses", content=orjson.dumps({"model": "edge", "input": items}))
        assert r.status_code == 400, r.text
        assert "input[0].encrypted_content" in r.json()["error"]["message"]
        items[0]["encrypted_content"] = encode_reasoning("I thought about it.")  # owstack's own: still read
        r = await app.client.post("/v1/responses", content=orjson.dumps({"model": "edge", "input": items}))
        assert r.status_code == 200, r.text
