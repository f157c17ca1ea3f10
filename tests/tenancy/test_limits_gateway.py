"""Rate caps and budgets through running gateways sharing the real Redis: headers on allowed and refused
responses with the official clients, settlement with the upstream's usage, a budget spent on a proprietary
backend, two gateway processes sharing one cap, and a gateway whose Redis is down (fail open).

These tests need the limit stage in the pipeline (`limit(gw)` in src/owstack/pipeline/build.py); they skip,
saying so, while the gateway's start-up line `stages audit -> meter -> ...` does not list `limit`."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis

from owstack.config.schema import ConfigFile
from owstack.tenancy.keys import KeyStore
from procs import Proc, free_port, run_gateway, upstream_backend

from .limits_support import REDIS_URL, keys_under

pytestmark = pytest.mark.redis
RUN = uuid.uuid4().hex[:8]
#: a prefix of this module's own when the config schema has `limits:`; otherwise the default prefix with
#: tenant names of this run's own (either way, every key of this run is deleted afterwards)
SCHEMA_HAS_LIMITS = "limits" in ConfigFile.model_fields
PREFIX = f"owstack-test-{RUN}:" if SCHEMA_HAS_LIMITS else "owstack:"
T = {name: f"{name}-{RUN}" for name in ("rpm", "tpm", "budget", "free", "shared", "down", "fleet")}
#: the body of each request of the two-gateway budget test, and what it holds: its prompt estimate (bytes / 4)
#: plus max_tokens at gpt-5.4's $2.50 / $15 per million (more than the $0.0001325 the fake upstream's 11 + 7
#: tokens cost); the budget fits 70 requests at that real cost
FLEET_BODY = b'{"model":"coding","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}'
FLEET_HOLD = len(FLEET_BODY) // 4 * 2.5e-6 + 20 * 15e-6
FLEET_COST = 11 * 2.5e-6 + 7 * 15e-6
FLEET_BUDGET = 70 * FLEET_COST


def require_limit_stage(gw: Proc) -> None:
    line = next((ln for ln in gw.log().splitlines() if "stages " in ln), "")
    stages = re.findall(r"[a-z_]+", line.split("stages", 1)[-1])
    if "limit" not in stages:
        pytest.skip(f"the limit stage is not wired into the pipeline yet ({line.strip() or 'no stages line'})")


def gateway_config(fake_upstream: Proc, db: str, redis_url: str) -> dict[str, Any]:
    u = fake_upstream
    config: dict[str, Any] = {
        "storage": {"url": db},
        "redis": redis_url,
        "backends": {
            "edge": upstream_backend(u, "edge-model"),
            "api": {
                "engine": "openai",
                "url": u.base_url,
                "model": "gpt-5.4",
                "proprietary": True,
                "health_check": False,
            },
        },
        "layers": {"edge": {"backends": ["edge"]}, "coding": {"backends": ["api"]}},
        "tenants": {
            T["rpm"]: {"requests_per_minute": 3},
            T["tpm"]: {"tokens_per_minute": 400},
            # gpt-5.4 at $2.50 / $15 per million: the fake upstream's 11 + 7 tokens cost $0.0001325; a request
            # holds its prompt estimate (body bytes / 4) plus max_tokens at that price until it is settled
            T["budget"]: {"budget_usd_month": 0.0002, "allow_proprietary": True},
            T["free"]: {},
            T["shared"]: {"requests_per_minute": 2},
            T["down"]: {"requests_per_minute": 1},
            T["fleet"]: {"budget_usd_month": FLEET_BUDGET, "allow_proprietary": True},
        },
    }
    if SCHEMA_HAS_LIMITS:
        config["limits"] = {"prefix": PREFIX}
    return config


@pytest.fixture(scope="module")
def world(fake_upstream: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("limits")
    db = f"sqlite:///{tmp}/owstack.db"
    config = gateway_config(fake_upstream, db, REDIS_URL)
    store = KeyStore(db)
    keys = {name: store.create(tenant)[0] for name, tenant in T.items()}
    try:
        with run_gateway(tmp, config) as gw:
            yield {"gw": gw, "keys": keys, "config": config, "tmp": tmp}
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        try:
            for tenant in T.values():
                for key in r.scan_iter(match=f"{PREFIX}{{{tenant}}}*"):
                    r.delete(key)
        finally:
            r.close()


def client(world: dict[str, Any], who: str, gw: Proc | None = None) -> openai.OpenAI:
    require_limit_stage(world["gw"])
    base = (gw or world["gw"]).base_url
    return openai.OpenAI(base_url=base, api_key=world["keys"][who], max_retries=0, timeout=30)


def ask(c: openai.OpenAI, model: str = "edge", **kw: Any) -> Any:
    return c.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "hi"}], **kw)


def test_request_cap_with_headers_on_every_response(world: dict[str, Any]) -> None:
    c = client(world, "rpm")
    raw = ask(c)
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    stream = c.chat.completions.with_raw_response.create(
        model="edge", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert stream.headers["x-ratelimit-remaining-requests"] == "1"
    assert (
        "".join(ch.choices[0].delta.content or "" for ch in stream.parse() if ch.choices).strip()
        == "hello from edge-model"
    )
    assert ask(c).headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as info:
        ask(c)
    err = info.value
    assert err.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    assert f"tenant '{T['rpm']}' may send 3 requests per minute" in err.message
    assert 1 <= int(err.response.headers["retry-after"]) <= 20
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_tokens_are_settled_with_the_upstream_usage(world: dict[str, Any]) -> None:
    c = client(world, "tpm")
    first = ask(c, max_tokens=300)  # reserves the body / 4 + 300, settles to the 18 tokens used
    reserved = 400 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert 300 < reserved < 340
    # without the settlement, a second reservation of the same size could not fit in 400
    second = ask(c, max_tokens=300)
    left = int(second.headers["x-ratelimit-remaining-tokens"])
    assert 400 - 18 - reserved <= left <= 400 - 18 - reserved + 15  # + what drained meanwhile (6.7 tokens/s)
    with pytest.raises(openai.RateLimitError) as info:
        ask(c, max_tokens=1000)  # more than a minute's worth: needs a full bucket
    assert "may use 400 tokens per minute" in info.value.message
    assert int(info.value.response.headers["x-ratelimit-remaining-tokens"]) < 400


def test_budget_exhausted_on_a_proprietary_backend(world: dict[str, Any]) -> None:
    c = client(world, "budget")
    assert ask(c, "coding", max_tokens=7).headers["x-owstack-backend"] == "api"  # holds ~$0.00015, costs $0.0001325
    with pytest.raises(openai.RateLimitError) as info:  # $0.0001325 + another ~$0.00015 hold > $0.0002
        ask(c, "coding", max_tokens=7)
    assert info.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert "this request may cost up to $0.0002" in info.value.message and "lower max_tokens" in info.value.message
    # a smaller hold fits; the upstream ignores max_tokens and charges 18 tokens: the excess passes the budget
    assert ask(c, "coding", max_tokens=1).headers["x-owstack-backend"] == "api"
    with pytest.raises(openai.RateLimitError) as info:
        ask(c, "coding", max_tokens=1)
    err = info.value
    assert err.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert "has spent $0.0003 of its $0.0002 monthly budget" in err.message and "it resets at" in err.message
    assert err.response.headers["x-should-retry"] == "false"
    assert int(err.response.headers["retry-after"]) > 0
    ac = anthropic.Anthropic(base_url=world["gw"].url, api_key=world["keys"]["budget"], max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as refused:
        ac.messages.create(model="edge", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 429 and "budget exhausted" in refused.value.message


def test_a_tenant_without_caps_gets_no_limit_headers(world: dict[str, Any]) -> None:
    raw = ask(client(world, "free"))
    assert not [h for h in raw.headers if h.startswith("x-ratelimit")]


def test_two_gateways_share_one_cap(world: dict[str, Any], tmp_path: Path) -> None:
    client(world, "shared")  # skips while the stage is not wired
    with run_gateway(tmp_path, world["config"]) as other:
        one, two = client(world, "shared"), client(world, "shared", other)
        assert ask(one).headers["x-ratelimit-remaining-requests"] == "1"
        assert ask(two).headers["x-ratelimit-remaining-requests"] == "0"
        for c in (one, two):
            with pytest.raises(openai.RateLimitError):
                ask(c)
    names = [k.decode() for k in keys_under(f"{PREFIX}{{{T['shared']}}}")]
    assert names == [f"{PREFIX}{{{T['shared']}}}:rpm"]
    r = redis.Redis.from_url(REDIS_URL)
    try:
        assert 0 < r.pttl(names[0]) <= 61_000  # expires once drained: nothing accumulates
    finally:
        r.close()


def test_two_gateways_admit_at_most_70_of_400_concurrent_requests_against_a_budget_that_fits_70(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """Each request holds its maximum cost in Redis before the call (one Lua script), and the holds of both
    processes count together: no local count multiplies the budget by the number of gateways. Each request
    holds more than it costs, so requests in flight may keep some from being admitted: at most 70 are."""
    client(world, "fleet")  # skips while the stage is not wired
    key = world["keys"]["fleet"]
    with run_gateway(tmp_path, world["config"]) as other:
        bases = [world["gw"].base_url, other.base_url]

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=400)
            async with httpx.AsyncClient(timeout=120, limits=limits) as http:
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                calls = [
                    http.post(f"{bases[i % 2]}/chat/completions", content=FLEET_BODY, headers=headers)
                    for i in range(400)
                ]
                return [r.status_code for r in await asyncio.gather(*calls)]

        statuses = asyncio.run(burst())
        logs = world["gw"].log()[-2000:] + other.log()[-2000:]
    admitted = statuses.count(200)
    assert statuses.count(429) == 400 - admitted, logs  # every other one refused, none failed
    assert 0 < admitted <= 70, logs
    r = redis.Redis.from_url(REDIS_URL)
    spend_key = f"{PREFIX}{{{T['fleet']}}}:usd:{time.strftime('%Y-%m', time.gmtime())}"
    try:
        deadline = time.monotonic() + 60  # the running gateway sends its charges within 0.1 s
        while float(r.get(spend_key) or 0) < admitted * FLEET_COST * 0.999 and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = float(r.get(spend_key) or 0)
    finally:
        r.close()
    assert spent <= FLEET_BUDGET * (1 + 1e-9) and spent == pytest.approx(admitted * FLEET_COST)


def test_redis_down_serves_unchecked_and_says_so(world: dict[str, Any], fake_upstream: Proc, tmp_path: Path) -> None:
    client(world, "down")
    config = gateway_config(fake_upstream, world["config"]["storage"]["url"], f"redis://127.0.0.1:{free_port()}/0")
    with run_gateway(tmp_path, config) as gw:
        c = client(world, "down", gw)
        for _ in range(3):  # a cap of 1 per minute, but nothing can check it
            raw = ask(c)
            assert raw.status_code == 200 and "x-ratelimit-limit-requests" not in raw.headers
        deadline = time.monotonic() + 60
        while "cannot be reached" not in gw.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "served unchecked" in gw.log()
        metrics = httpx.get(gw.url + "/metrics").text
        assert re.search(r"^owstack_limit_unchecked_total 3\.0$", metrics, re.M), metrics[-2000:]
