"""Hostile bodies against the whole gateway in process (a fake backend): nesting, numbers past any type,
invalid UTF-8, mangled and mistyped JSON, odd shapes, on the OpenAI and Anthropic endpoints. None may get a
5xx; every refusal is a 4xx in the endpoint's own error shape; the gateway serves normally afterwards and
its breakers and in-flight counts are back at rest."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import httpx
import orjson
import pytest

from fakes.backend import FakeBackend, Reply
from owstack.assembly import assemble
from owstack.config.load import from_dict
from reliability.fuzz import RICH, VALID, bodies, planted


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_hostile_bodies_get_4xx_in_the_api_shape_and_nothing_breaks(path: str, tmp_path: Path) -> None:
    config = from_dict(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'owstack.db'}"},
            "metering": {"enabled": False},
            "audit": {"enabled": False},
            "backends": {"fake": {"engine": "vllm", "url": "http://fake.invalid/v1", "model": "fake-model"}},
        }
    )
    backend = FakeBackend("fake", replies=[Reply(text="hi")])
    gw = assemble(config, backends={"fake": backend})
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}

    async def main() -> tuple[collections.Counter[str], list[str], int]:
        await gw.startup()
        statuses: collections.Counter[str] = collections.Counter()
        bad_shapes: list[str] = []
        transport = httpx.ASGITransport(app=gw)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as http:
                for kind, body in bodies(seed=14, n=700):
                    r = await http.post(path, content=body)
                    statuses[f"{r.status_code // 100}xx"] += 1
                    if r.status_code >= 500:
                        bad_shapes.append(f"{kind}: {r.status_code} {r.text[:200]}")
                    elif r.status_code >= 400:
                        doc = orjson.loads(r.content)
                        error = doc.get("error") if isinstance(doc, dict) else None
                        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
                            bad_shapes.append(f"{kind}: {r.status_code} {r.text[:200]}")
                after = await http.post(path, content=orjson.dumps({**VALID, "max_tokens": 8}))
                return statuses, bad_shapes, after.status_code
        finally:
            await gw.shutdown()

    statuses, bad, after = asyncio.run(main())
    assert statuses["5xx"] == 0 and not bad, bad[:5]
    assert statuses["4xx"] > 400 and statuses["2xx"] > 0  # most are refused, the valid ones are served
    assert after == 200
    for slot in gw.slots.values():  # nothing left half-settled by a body that failed late
        assert slot.outstanding == 0 and slot.breaker.available()


@pytest.mark.parametrize("path", list(RICH))
def test_values_planted_deep_in_every_endpoint_get_4xx_in_its_shape(path: str, tmp_path: Path) -> None:
    """One value of another kind anywhere inside a valid body (an item, a block, a tool, a format): the
    class that found nested fields the schemas left untyped (500s before)."""
    config = from_dict(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'owstack.db'}"},
            "metering": {"enabled": False},
            "audit": {"enabled": False},
            "backends": {"fake": {"engine": "vllm", "url": "http://fake.invalid/v1", "model": "fake-model"}},
        }
    )
    gw = assemble(config, backends={"fake": FakeBackend("fake", replies=[Reply(text="hi")])})
    anthropic = path.startswith("/v1/messages")

    async def main() -> tuple[collections.Counter[str], list[str]]:
        await gw.startup()
        statuses: collections.Counter[str] = collections.Counter()
        bad: list[str] = []
        transport = httpx.ASGITransport(app=gw)
        try:
            headers = {"content-type": "application/json"}
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", headers=headers) as http:
                for where, body in planted(path, seed=14, n=150):
                    r = await http.post(path, content=body)
                    statuses[f"{r.status_code // 100}xx"] += 1
                    doc = orjson.loads(r.content) if r.status_code >= 400 else {}
                    shaped = doc.get("type") == "error" if anthropic else isinstance(doc.get("error"), dict)
                    if r.status_code >= 500 or (r.status_code >= 400 and not shaped):
                        bad.append(f"{where}: {r.status_code} {r.text[:200]}")
        finally:
            await gw.shutdown()
        return statuses, bad

    statuses, bad = asyncio.run(main())
    assert statuses["5xx"] == 0 and not bad, bad[:5]
    assert statuses["4xx"] > 0
    for slot in gw.slots.values():
        assert slot.outstanding == 0 and slot.breaker.available()
