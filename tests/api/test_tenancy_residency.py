"""Keys and residency through the gateway (in process, its real backends against a real upstream server,
tests/api/conftest.py): every path (primary, fallback, auto, streaming) stays inside the tenant's
jurisdictions, a refusal sends nothing upstream and is recorded."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.conftest import App, serve
from owstack.config.load import from_dict
from owstack.metering.journal import catch_up
from owstack.tenancy.keys import KeyStore
from procs import Proc, upstream_backend

pytestmark = pytest.mark.anyio


def count(upstream: Proc, model: str) -> int:
    return int(httpx.get(upstream.url + "/stats").json()["requests"].get(model, 0))


@pytest.fixture(scope="module")
async def world(fake_upstream: Proc, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("residency")
    db = f"sqlite:///{tmp}/owstack.db"
    u = fake_upstream
    config = {
        "storage": {"url": db},
        "backends": {
            "us-edge": upstream_backend(u, "us-edge", jurisdiction="us"),
            "eu-edge": upstream_backend(u, "eu-edge", jurisdiction="eu-fr"),
            "eu-broken": upstream_backend(u, "fail-before-first-byte", jurisdiction="eu", health_check=False),
            "us-good": upstream_backend(u, "us-good", jurisdiction="us"),
            "local-good": upstream_backend(u, "local-good", jurisdiction="local"),
            "us-vision": upstream_backend(u, "us-vision", jurisdiction="us"),
            "openai-us": {
                "engine": "openai",
                "url": u.base_url,
                "model": "gpt-5.4",
                "jurisdiction": "us",
                "proprietary": True,
                "health_check": False,
            },
        },
        "layers": {
            "edge": {"backends": ["us-edge", "eu-edge"]},
            "coding": {"backends": ["eu-broken"], "fallback": ["us-good", "local-good"]},
            "multimodal": {"backends": ["us-vision"], "fallback": ["openai-us", "local-good"]},
        },
        "tenants": {
            "acme-eu": {"jurisdictions": ["eu", "local"]},
            "acme-us": {"jurisdictions": ["us"], "allow_proprietary": True},
            "us-no-api": {"jurisdictions": ["us"]},
            "fr-only": {"jurisdictions": ["eu-fr"]},
        },
        "routing": {"breaker": {"failure_threshold": 1000}},
    }
    store = KeyStore(db)
    keys = {tenant: store.create(tenant)[0] for tenant in config["tenants"]}
    keys["edge-only"] = store.create("acme-eu", layers=["edge"])[0]
    async with serve(tmp, config) as gw:
        yield {"gw": gw, "keys": keys, "store": store, "db": tmp / "owstack.db", "config": from_dict(config)}


def client(world: dict[str, Any], who: str) -> openai.AsyncOpenAI:
    app: App = world["gw"]
    return app.openai(world["keys"][who])


async def ask(c: openai.AsyncOpenAI, model: str, **kw: Any) -> Any:
    return await c.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hi"}], **kw
    )


async def test_primary_path_skips_replicas_outside_the_jurisdiction(world: dict[str, Any], fake_upstream: Proc) -> None:
    us_before = count(fake_upstream, "us-edge")
    eu = client(world, "acme-eu")
    served = {(await ask(eu, "edge")).headers["x-owstack-backend"] for _ in range(4)}
    assert served == {"eu-edge"}
    assert count(fake_upstream, "us-edge") == us_before
    us = client(world, "acme-us")
    assert {(await ask(us, "edge")).headers["x-owstack-backend"] for _ in range(3)} == {"us-edge"}


async def test_fallback_stays_inside_the_jurisdiction(world: dict[str, Any], fake_upstream: Proc) -> None:
    us_before = count(fake_upstream, "us-good")
    raw = await ask(client(world, "acme-eu"), "coding")
    assert raw.headers["x-owstack-backend"] == "local-good"
    assert count(fake_upstream, "us-good") == us_before


async def test_streaming_stays_inside_the_jurisdiction(world: dict[str, Any]) -> None:
    stream = await client(world, "acme-eu").chat.completions.create(
        model="coding", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip() == "hello from local-good"


async def test_auto_routing_goes_only_to_the_allowed_fallback(world: dict[str, Any], fake_upstream: Proc) -> None:
    """Every replica of the layer is outside the tenant's jurisdictions: only its allowed fallback serves."""
    before = (count(fake_upstream, "us-vision"), count(fake_upstream, "gpt-5.4"))
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    raw = await client(world, "acme-eu").chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": image}]
    )
    assert raw.headers["x-owstack-layer"] == "multimodal"
    assert raw.headers["x-owstack-backend"] == "local-good"
    assert (count(fake_upstream, "us-vision"), count(fake_upstream, "gpt-5.4")) == before


async def test_no_allowed_backend_is_refused_and_nothing_leaves(world: dict[str, Any], fake_upstream: Proc) -> None:
    models = ("us-vision", "gpt-5.4", "local-good")
    before = [count(fake_upstream, m) for m in models]
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    for stream in (False, True):  # multimodal: us, us (proprietary), local; the tenant allows only eu-fr
        with pytest.raises(openai.PermissionDeniedError) as info:
            await client(world, "fr-only").chat.completions.create(
                model="auto", messages=[{"role": "user", "content": image}], stream=stream
            )
        assert info.value.body["code"] == "residency_violation"  # type: ignore[index]
        assert "fr-only" in info.value.message and "multimodal" in info.value.message
        assert info.value.response.headers["x-owstack-layer"] == "multimodal"
    assert [count(fake_upstream, m) for m in models] == before


async def test_proprietary_backends_need_an_explicit_allowance(world: dict[str, Any], fake_upstream: Proc) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        await ask(client(world, "us-no-api"), "gpt-5.4")
    before = count(fake_upstream, "gpt-5.4")
    raw = await ask(client(world, "acme-us"), "gpt-5.4", max_tokens=5, extra_body={"top_k": 3})
    assert raw.headers["x-owstack-backend"] == "openai-us"
    assert count(fake_upstream, "gpt-5.4") == before + 1
    sent = httpx.get(fake_upstream.url + "/stats").json()["last_body"]
    # the proprietary dialect: OpenAI's token-limit field, engine-only fields dropped
    assert sent["max_completion_tokens"] == 5 and "max_tokens" not in sent and "top_k" not in sent


async def test_keys_401_and_layers_403(world: dict[str, Any]) -> None:
    gw: App = world["gw"]
    for key in (None, "not-a-key", "ows-000000000000-" + "A" * 43):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        r = await gw.http.post(
            "/v1/chat/completions",
            json={"model": "edge", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
        assert r.status_code == 401, r.text
        assert r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.PermissionDeniedError) as info:
        await ask(client(world, "edge-only"), "coding")
    assert info.value.body["code"] == "layer_not_allowed"  # type: ignore[index]
    assert (await ask(client(world, "edge-only"), "edge")).headers["x-owstack-backend"] == "eu-edge"


async def test_revoked_key_stops_working(world: dict[str, Any]) -> None:
    store: KeyStore = world["store"]
    key, record = store.create("acme-eu")
    c = world["gw"].openai(key)
    assert (await ask(c, "edge")).headers["x-owstack-backend"] == "eu-edge"
    store.revoke(record.key_id)
    deadline = time.monotonic() + 60  # only bounds a failing run: the revision check runs every second
    while True:
        try:
            await ask(c, "edge")
        except openai.AuthenticationError as exc:
            assert "revoked" in exc.message
            break
        assert time.monotonic() < deadline, "revocation did not reach the gateway"
        await asyncio.sleep(0.3)


async def test_refusals_are_recorded_in_the_ledger(world: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        await ask(client(world, "us-no-api"), "gpt-5.4")
    deadline = time.monotonic() + 60  # only bounds a failing run
    while time.monotonic() < deadline:
        catch_up(f"sqlite:///{world['db']}")  # file what the ledger process journaled, as owstack's readers do
        with sqlite3.connect(world["db"]) as conn:
            rows = conn.execute(
                "select tenant, status, error_code, backend from ledger where error_code = 'residency_violation'"
            ).fetchall()
        if ("us-no-api", 403, "residency_violation", None) in rows:
            break
        await asyncio.sleep(0.3)
    assert ("us-no-api", 403, "residency_violation", None) in rows
    assert all(r[1] == 403 and r[3] is None for r in rows)  # refused before any backend was tried
