"""The key store while PostgreSQL is away (a TCP proxy between them, paused like a partition or cut like a
server that went down): requests wait at most `lookup_timeout_s`, keys read recently keep working for the
outage grace, keys never seen get 503, nobody waits for a store that just failed, the warnings are few,
and a revocation made meanwhile is honoured as soon as the store answers again. Time is the test's clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from owstack.errors import AuthenticationFailed, ServiceUnavailable
from owstack.storage.collector import StoreCollector
from owstack.tenancy.keys import KeyStore
from reliability.tcpproxy import TcpProxy

from .conftest import pg_create, pg_drop

pytestmark = pytest.mark.postgres


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pg() -> Iterator[tuple[str, str, TcpProxy]]:
    """(direct URL, URL through a proxy, the proxy) of a database of the test's own."""
    url = pg_create()
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    via = url.replace("127.0.0.1:5432", proxy.url_host)
    try:
        yield url, via, proxy
    finally:
        proxy.close()
        from owstack.storage import dispose

        dispose(via)
        pg_drop(url)


def gateway_store(url: str, clock: Clock) -> KeyStore:
    """A gateway's store with a lookup timeout long enough for a busy machine while the store answers (the
    tests shorten it to half a second just before they partition it: then nothing can answer in time)."""
    return KeyStore(
        url,
        require_store=False,
        cache_ttl_s=60,
        outage_grace_s=3600,
        lookup_timeout_s=60,
        revision_check_s=1,
        clock=clock,
    )


def test_cached_keys_work_through_a_partition_and_revocations_land_when_it_ends(
    pg: tuple[str, str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    url, via, proxy = pg
    admin = KeyStore(url)
    seen, record = admin.create("acme")
    unseen, _ = admin.create("acme")
    clock = Clock()
    store = gateway_store(via, clock)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        assert (await store.authenticate_async(seen)).key_id == record.key_id  # cached
        store.lookup_timeout_s = 0.5
        proxy.pause()  # a partition: the store's connections hang
        clock.now += 120  # past the cache TTL: the row must be read again, and cannot be
        with caplog.at_level(logging.WARNING, logger="owstack.storage"):
            out["first"] = (await store.authenticate_async(seen)).key_id  # waited 0.5 s, then the grace
            for _ in range(50):  # nobody waits for the store now: one probe per backoff interval at most
                out["more"] = (await asyncio.wait_for(store.authenticate_async(seen), 0.4)).key_id
            with pytest.raises(ServiceUnavailable) as info:
                await store.authenticate_async(unseen)
            out["unseen"] = (info.value.status, info.value.code)
        out["warnings"] = [r.getMessage() for r in caplog.records if r.name == "owstack.storage"]
        out["up"] = store.health.up
        admin.revoke(record.key_id)  # made while this gateway cannot see the store: not honoured yet
        out["during"] = (await store.authenticate_async(seen)).key_id
        proxy.resume()
        clock.now += 60  # the next probe is due; the revision read finds the change and drops the cache
        for _ in range(3):
            try:
                await store.authenticate_async(seen)
            except AuthenticationFailed as exc:
                out["after"] = exc.message
                break
            if store._refreshing is not None:
                await store._refreshing
        out["up_after"] = store.health.up
        await store.aclose()
        return out

    out = asyncio.run(main())
    assert out["first"] == out["more"] == out["during"] == record.key_id
    assert out["unseen"] == (503, "key_store_unavailable")
    assert out["up"] is False and out["up_after"] is True
    assert "revoked" in out["after"]
    assert len(out["warnings"]) == 1 and "keys store" in out["warnings"][0]  # one line for the outage


def test_past_the_grace_cached_keys_fail_closed(pg: tuple[str, str, TcpProxy]) -> None:
    url, via, proxy = pg
    key, _ = KeyStore(url).create("acme")
    clock = Clock()
    store = gateway_store(via, clock)

    async def main() -> tuple[int, str]:
        await store.authenticate_async(key)
        proxy.cut()
        clock.now += 60 + 3600 + 1
        try:
            with pytest.raises(ServiceUnavailable) as info:
                await store.authenticate_async(key)
            return info.value.status, info.value.code
        finally:
            await store.aclose()

    assert asyncio.run(main()) == (503, "key_store_unavailable")


def test_a_store_unreachable_at_start_is_not_an_error_and_is_used_once_it_answers(
    pg: tuple[str, str, TcpProxy],
) -> None:
    url, via, proxy = pg
    key, record = KeyStore(url).create("acme")
    proxy.cut()
    clock = Clock()
    store = gateway_store(via, clock)  # no traceback, no exception: the gateway starts
    assert store.health.up is False
    metrics = {m.name: m for m in StoreCollector().collect()}
    assert [s.value for s in metrics["owstack_store_up"].samples if s.labels == {"store": "keys"}] == [0.0]

    async def main() -> str:
        try:
            with pytest.raises(ServiceUnavailable):
                await store.authenticate_async(key)  # nothing seen yet: refused, not served unchecked
            proxy.resume()
            clock.now += 60  # the next probe is due
            return (await store.authenticate_async(key)).key_id
        finally:
            await store.aclose()

    assert asyncio.run(main()) == record.key_id
    assert store.health.up is True
