"""Three `owstack serve` processes on their own ports, one Redis and one PostgreSQL, a round-robin client:
the instances agree on rate caps, budgets, key revocation, stored responses and open breakers; a SIGKILLed
instance leaves no reservation once its holds have expired; the ledger in PostgreSQL holds exactly the
requests that were answered, and nothing is lost across a rolling restart of every instance under load.

The database and the Redis key prefix are this module's own and removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa

from procs import Proc, free_port, run_gateway, run_gateways, spawn, upstream_backend, wait_http

from .conftest import PG_ADMIN, REDIS_URL, Replicas

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
RUN = uuid.uuid4().hex[:8]
PREFIX = f"owstack-fleet-{RUN}:"
#: gpt-5.4 at $2.50 / $15 per million; the fake upstream answers 11 + 7 tokens whatever it is asked
BODY = b'{"model":"coding","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}'
COST = 11 * 2.5e-6 + 7 * 15e-6
TENANTS = ("rpm", "budget", "killed", "steady", "revoked", "responses")


def fleet_config(fake: Proc, slow: Replicas, db: str, tmp: Path) -> dict[str, Any]:
    api = {"engine": "openai", "model": "gpt-5.4", "proprietary": True, "health_check": False}
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    return {
        "storage": {"url": db},
        "redis": REDIS_URL,
        "limits": {"prefix": PREFIX, "reservation_ttl_s": 4},
        "backends": {
            "api": {**api, "url": fake.base_url},
            "slow-api": {**api, "url": f"http://127.0.0.1:{slow.ports[0]}/v1"},
            "edge": upstream_backend(fake, "edge-model"),
            "down": {"engine": "vllm", "url": down, "model": "down-model", "health_check": False},
        },
        "layers": {
            "coding": {"backends": ["api"]},
            "multimodal": {"backends": ["slow-api"]},
            "edge": {"backends": ["down"], "fallback": ["edge"]},
        },
        "routing": {"breaker": {"failure_threshold": 2, "reset_s": 120}, "shared": {"sync_interval_ms": 50}},
        "tenants": {
            "rpm": {"requests_per_minute": 100, "allow_proprietary": True},
            "budget": {"budget_usd_month": 70 * COST, "allow_proprietary": True},
            "killed": {"budget_usd_month": 100.0, "allow_proprietary": True},
            "steady": {"allow_proprietary": True},
            "revoked": {},
            "responses": {"allow_proprietary": True},
        },
        "audit": {"directory": str(tmp / "audit")},
    }


@pytest.fixture(scope="module")
def fleet(fake_upstream: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import psycopg

    from owstack.storage import dispose
    from owstack.tenancy.keys import KeyStore

    tmp = tmp_path_factory.mktemp("fleet")
    name = f"owstack_fleet_{RUN}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = f"postgresql://postgres@127.0.0.1:5432/{name}"
    slow = Replicas(tmp, 1, "--decode-ms", "200")
    try:
        store = KeyStore(db)
        keys = {tenant: store.create(tenant)[0] for tenant in TENANTS}
        revocable = store.list("revoked")[0].key_id
        dispose(db)
        config = fleet_config(fake_upstream, slow, db, tmp)
        with run_gateways(tmp, config, 3) as gateways:
            world = {"gws": gateways, "keys": keys, "db": db, "config": config, "tmp": tmp, "revocable": revocable}
            try:
                yield world
            finally:
                with ThreadPoolExecutor(3) as pool:  # the restarted ones too, side by side
                    list(pool.map(Proc.stop, world["gws"]))
    finally:
        slow.stop()
        dispose(db)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in client.scan_iter(match=PREFIX + "*", count=1000):
                client.delete(key)
        finally:
            client.close()


def burst(urls: list[str], key: str, n: int, body: bytes = BODY, tag: str = "b") -> list[tuple[str, int]]:
    """`n` concurrent requests, round-robin over `urls`: [(request id, status)]."""

    async def main() -> list[tuple[str, int]]:
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:

            async def one(i: int) -> tuple[str, int]:
                rid = f"{tag}-{RUN}-{i:05d}"
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "x-request-id": rid}
                r = await http.post(f"{urls[i % len(urls)]}/v1/chat/completions", content=body, headers=headers)
                return rid, r.status_code

            return list(await asyncio.gather(*(one(i) for i in range(n))))

    return asyncio.run(main())


def spend(tenant: str) -> tuple[float, float]:
    """(month-to-date spend, USD held by requests in flight) as Redis holds them."""
    r = redis.Redis.from_url(REDIS_URL)
    try:
        month = time.strftime("%Y-%m", time.gmtime())
        return float(r.get(f"{PREFIX}{{{tenant}}}:usd:{month}") or 0), float(r.get(f"{PREFIX}{{{tenant}}}:held") or 0)
    finally:
        r.close()


def until(check: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


ANSWERED: dict[str, int] = {}  # request id -> status, of every request the tests below sent


def test_requests_per_minute_100_under_400_concurrent_lets_at_most_100_through(fleet: dict[str, Any]) -> None:
    """The cap is a bucket of 100 that refills continuously (100 a minute): over a burst of d seconds at
    most 100 + 100 x d / 60 pass, whichever instance each request reaches."""
    started = time.monotonic()
    results = burst([g.url for g in fleet["gws"]], fleet["keys"]["rpm"], 400, tag="rpm")
    took = time.monotonic() - started
    ANSWERED.update(results)
    statuses = [s for _, s in results]
    assert statuses.count(429) == 400 - statuses.count(200)
    assert 100 <= statuses.count(200) <= 100 + int(100 * took / 60) + 1, (statuses.count(200), took)


def test_a_budget_that_fits_70_admits_at_most_70_of_400_concurrent(fleet: dict[str, Any]) -> None:
    results = burst([g.url for g in fleet["gws"]], fleet["keys"]["budget"], 400, tag="budget")
    ANSWERED.update(results)
    statuses = [s for _, s in results]
    admitted = statuses.count(200)
    assert statuses.count(429) == 400 - admitted
    assert 0 < admitted <= 70
    until(lambda: spend("budget")[0] >= admitted * COST * 0.999, "the charges reach Redis")
    spent, held = spend("budget")
    assert spent == pytest.approx(admitted * COST) and spent <= 70 * COST * (1 + 1e-9)
    assert held == 0.0


def test_a_sigkilled_instance_leaves_no_reservation_after_its_expiry(fleet: dict[str, Any]) -> None:
    tmp, config, key = fleet["tmp"], fleet["config"], fleet["keys"]["killed"]
    body = b'{"model":"multimodal","max_tokens":30,"messages":[{"role":"user","content":"hi"}]}'  # 6 s each
    with run_gateway(tmp, config) as doomed, ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(burst, [doomed.url], key, 1, body, f"killed{i}") for i in range(8)]
        until(lambda: spend("killed")[1] > 0 and _holds("killed") == 8, "eight holds in flight")
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(30)
        for call in calls:
            with contextlib.suppress(httpx.HTTPError):
                call.result(timeout=60)
    dead = _hold_members("killed")
    assert len(dead) == 8, "the dead instance's holds are still counted ..."
    survivor = fleet["gws"][0].url
    # ... until their TTL (limits.reservation_ttl_s: 4 s) has passed; the next reservation drops them (the
    # survivor's own hold is released by its next reservation or flush, so only the dead ones are looked for)
    until(
        lambda: (
            burst([survivor], key, 1, tag=f"k{time.monotonic_ns()}")[0][1] == 200 and not dead & _hold_members("killed")
        ),
        "the lapsed holds are dropped",
        timeout=60,
    )
    until(lambda: _holds("killed") == 0 and spend("killed")[1] == 0.0, "nothing held")


def _hold_members(tenant: str) -> set[bytes]:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        return set(r.zrange(f"{PREFIX}{{{tenant}}}:holds", 0, -1))
    finally:
        r.close()


def _holds(tenant: str) -> int:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        return int(r.zcard(f"{PREFIX}{{{tenant}}}:holds"))
    finally:
        r.close()


def test_a_revoked_key_is_refused_by_every_instance(fleet: dict[str, Any]) -> None:
    """Each instance reads the key table's revision every `keys.revision_check_s` (1 s), requests or not:
    after the revocation and a quiet spell, the first request on every instance is refused, and so is every
    later one. (Reading it only when a request comes would let that first request through.)"""
    from owstack.storage import dispose
    from owstack.tenancy.keys import KeyStore

    key = fleet["keys"]["revoked"]
    urls = [g.url for g in fleet["gws"]]
    with httpx.Client(timeout=30) as http:

        def status(url: str) -> int:
            body = {"model": "coding", "messages": [{"role": "user", "content": "hi"}]}
            return http.post(
                url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
            ).status_code

        assert [status(u) for u in urls] == [403, 403, 403], "valid key (cached); the tenant may not use the API"
        KeyStore(fleet["db"]).revoke(fleet["revocable"])
        dispose(fleet["db"])
        time.sleep(4)  # idle: four revision intervals without a request on any instance
        assert [status(u) for u in urls] == [401, 401, 401], "the first request after the quiet spell"
        for _ in range(5):
            assert [status(u) for u in urls] == [401, 401, 401]


def test_stored_responses_are_shared_through_postgresql(fleet: dict[str, Any]) -> None:
    a, b, c = (g.url for g in fleet["gws"])
    headers = {"authorization": f"Bearer {fleet['keys']['responses']}"}
    with httpx.Client(timeout=30, headers=headers) as http:
        first = http.post(a + "/v1/responses", json={"model": "coding", "input": "remember 42"}).json()
        got = http.get(f"{b}/v1/responses/{first['id']}")
        assert got.status_code == 200 and got.json()["id"] == first["id"]
        nowhere = {"model": "coding", "input": "and?", "previous_response_id": "resp_" + "0" * 24}
        assert http.post(c + "/v1/responses", json=nowhere).status_code in (400, 404)
        follow = {"model": "coding", "input": "and?", "previous_response_id": first["id"]}
        assert http.post(c + "/v1/responses", json=follow).status_code == 200, "continued on another instance"
        assert http.delete(f"{b}/v1/responses/{first['id']}").status_code == 200
        assert http.get(f"{c}/v1/responses/{first['id']}").status_code == 404


def test_an_instance_learns_that_a_backend_is_down_from_the_others(fleet: dict[str, Any]) -> None:
    """`down` refuses connections: two requests through instance 0 open its breaker (threshold 2); the
    others see it open without sending anything there."""
    gws, key = fleet["gws"], fleet["keys"]["steady"]
    with httpx.Client(timeout=30) as http:
        for _ in range(2):
            body = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
            r = http.post(gws[0].url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
            assert r.status_code == 200 and r.headers["x-owstack-backend"] == "edge"  # the fallback answered

        def breaker(url: str) -> str:
            text = http.get(url + "/metrics").text
            line = next(
                ln for ln in text.splitlines() if ln.startswith('owstack_backend_breaker_state{backend="down"}')
            )
            return line.rsplit(" ", 1)[1]

        until(lambda: all(breaker(g.url) == "2.0" for g in gws), "every instance holds down's breaker open")
        assert 'owstack_shared_applied_total{kind="breaker"} 1.0' in http.get(gws[1].url + "/metrics").text


def test_a_rolling_restart_under_load_loses_no_ledger_or_audit_record(fleet: dict[str, Any]) -> None:
    """Every instance is restarted in turn (SIGTERM, drained; a new process on the same port) while a client
    keeps sending, moving to the next instance when one refuses the connection, as a load balancer does.
    Then the ledger in PostgreSQL holds one row per answered request of this module, with its status, and
    the audit log one record per request."""
    gws, key, tmp = fleet["gws"], fleet["keys"]["steady"], fleet["tmp"]
    stop = threading.Event()
    sent: dict[str, int] = {}
    counter = itertools.count()

    def client() -> None:
        with httpx.Client(timeout=60) as http:
            while not stop.is_set():
                rid = f"roll-{RUN}-{next(counter):06d}"
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "x-request-id": rid}
                for gw in itertools.islice(itertools.cycle(gws), hash(rid) % 3, hash(rid) % 3 + 3):
                    try:
                        sent[rid] = http.post(
                            gw.url + "/v1/chat/completions", content=BODY, headers=headers
                        ).status_code
                        break
                    except (httpx.ConnectError, httpx.RemoteProtocolError):
                        continue  # that instance is restarting (refused, or closed an idle connection): the next

    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(client) for _ in range(4)]
        for i, gw in enumerate(gws):
            until(lambda n=30 * (i + 1): len(sent) > n, "load before each restart")
            assert gw.stop() is not None
            gws[i] = _restart(tmp, gw)
        until(lambda: len(sent) > 30 * (len(gws) + 1), "load after the last restart")
        stop.set()
        for c in clients:
            c.result(timeout=120)
    ANSWERED.update(sent)
    assert set(sent.values()) == {200}, f"nothing dropped: {sorted(set(sent.values()))}"
    for gw in gws:
        gw.stop()  # flush everything: the ledger and the audit log are complete once the instances have stopped
    rows = _ledger(fleet["db"])
    for rid, status in ANSWERED.items():
        assert rows.get(rid) == status, f"ledger row of {rid}: {rows.get(rid)} (answered {status})"
    audited = _audited(tmp / "audit")
    missing = [rid for rid in ANSWERED if rid not in audited]
    assert not missing, f"{len(missing)} answered requests without an audit record, e.g. {missing[:3]}"


def _restart(tmp: Path, old: Proc) -> Proc:
    import sys

    cmd = [sys.executable, "-m", "owstack", "serve", "--port", str(old.port), "--config", str(_config_path(tmp, old))]
    log = tmp / f"gateway-{old.port}-again.log"
    proc = Proc(spawn(cmd, log, cwd=tmp), old.port, log)
    wait_http(proc.url + "/readyz", proc.proc, log, timeout=90)
    return proc


def _config_path(tmp: Path, gw: Proc) -> Path:
    return next(tmp.glob("owstack-*.yaml"))  # the instances share one configuration


def _ledger(db: str) -> dict[str, int]:
    from owstack.metering.journal import catch_up
    from owstack.storage import dispose, engine

    catch_up(db)
    try:
        with engine(db).connect() as conn:
            return {rid: status for rid, status in conn.execute(sa.text("SELECT request_id, status FROM ledger"))}
    finally:
        dispose(db)


def _audited(directory: Path) -> set[str]:
    """The event ids (request ids) in every audit stream, and a check that every chain verifies."""
    import orjson

    from owstack.compliance.verify import verify

    report = verify(directory)
    assert all(s.damage is None for s in report.streams), [s.damage for s in report.streams if s.damage]
    ids = set()
    for segment in directory.glob("streams/*/*.jsonl"):
        for line in segment.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict):
                    ids.add(str(record.get("event_id") or (record.get("record") or {}).get("event_id")))
    return ids
