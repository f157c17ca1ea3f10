"""`/v1/completions` and `/v1/embeddings`, in process, against a real OpenAI-compatible upstream server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest

from owstack.assembly import assemble
from owstack.config.load import from_dict
from procs import Proc

pytestmark = pytest.mark.anyio


def config(tmp: Path, upstream: Proc, endpoints: list[str] | None) -> dict[str, Any]:
    backend: dict[str, Any] = {"engine": "vllm", "url": upstream.base_url, "model": "fake"}
    if endpoints is not None:
        backend["endpoints"] = endpoints
    return {
        "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
        "audit": {"enabled": False},
        "metering": {"enabled": False},
        "backends": {"up": backend},
    }


async def test_completions_and_embeddings_are_routed_and_answered(tmp_path: Path, fake_upstream: Proc) -> None:
    gw = assemble(from_dict(config(tmp_path, fake_upstream, ["chat", "completions", "embeddings"])))
    await gw.startup()
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=gw), base_url="http://127.0.0.1") as http:
            client = openai.AsyncOpenAI(base_url="http://127.0.0.1/v1", api_key="x", http_client=http, max_retries=0)
            text = await client.completions.create(model="edge", prompt="Once upon a time", max_tokens=8)
            chunks = [c async for c in await client.completions.create(model="fake", prompt="abc", stream=True)]
            vectors = await client.embeddings.create(model="fake", input=["one", "three"])
    finally:
        await gw.shutdown()
    assert text.choices[0].text == " completed 16 characters" and text.usage is not None
    assert "".join(c.choices[0].text for c in chunks if c.choices) == " completed 3 characters"
    assert [d.embedding for d in vectors.data] == [[0.1, 0.2, 3.0], [0.1, 0.2, 5.0]]
    assert vectors.usage.prompt_tokens == 6


async def test_no_backend_that_embeds_is_a_404_naming_the_endpoint(tmp_path: Path, fake_upstream: Proc) -> None:
    gw = assemble(from_dict(config(tmp_path, fake_upstream, None)))
    await gw.startup()
    try:
        transport = httpx.ASGITransport(app=gw)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            r = await http.post("/v1/embeddings", json={"model": "fake", "input": "x"})
            chat = await http.post(
                "/v1/chat/completions", json={"model": "fake", "messages": [{"role": "user", "content": "x"}]}
            )
    finally:
        await gw.shutdown()
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "endpoint_not_supported" and "/v1/embeddings" in r.json()["error"]["message"]
    assert chat.status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/completions", {"model": "fake", "prompt": "", "tools": 1}),  # found by the body fuzz: was a 500
        ("/v1/completions", {"model": "fake", "prompt": "x", "tools": [{"type": "function"}]}),
        ("/v1/completions", {"model": "fake", "prompt": "x", "messages": []}),
        ("/v1/embeddings", {"model": "fake", "input": "x", "tool_choice": "auto"}),
    ],
)
async def test_chat_only_fields_are_a_400_naming_them(
    tmp_path: Path, fake_upstream: Proc, route: str, body: dict[str, Any]
) -> None:
    cfg = config(tmp_path, fake_upstream, ["chat", "completions", "embeddings"])
    cfg["security"] = {"guard": {"mode": "flag"}}  # the guard reads tools: it must never meet a bad shape
    gw = assemble(from_dict(cfg))
    await gw.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw), base_url="http://127.0.0.1") as http:
            r = await http.post(route, json=body)
    finally:
        await gw.shutdown()
    field = next(k for k in body if k not in ("model", "prompt", "input"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == field and "/v1/chat/completions" in r.json()["error"]["message"]
