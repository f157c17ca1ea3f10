"""The ledger writer: batches, flush on close, all-or-nothing with bisection, outage and retry, bounds."""

from __future__ import annotations

import time
from typing import Any

import pytest
from metering_helpers import TcpProxy, count, make_config, make_ctx, rows

from owstack.errors import ConfigError
from owstack.metering.costs import Pricing
from owstack.metering.prometheus import Metrics
from owstack.metering.record import snapshot
from owstack.metering.writer import LedgerWriter


def writer(url: str, **options: Any) -> LedgerWriter:
    config = make_config(url)
    defaults: dict[str, Any] = {"batch_size": 1000, "flush_interval_s": 60.0, "retry_max_s": 0.2}
    return LedgerWriter(
        url, pricing=Pricing.from_config(config), metrics=Metrics.from_config(config), **{**defaults, **options}
    )


def submit(w: LedgerWriter, n: int, prefix: str = "r", **ctx: Any) -> None:
    for i in range(n):
        w.submit(snapshot(make_ctx(f"{prefix}{i:04d}", **ctx)))


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_records_go_in_full_batches_and_close_flushes_the_rest(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from owstack.metering import ledger

    w = writer(db_url, batch_size=10)
    sizes: list[int] = []
    insert_values = ledger.insert_values

    def spy(conn: Any, values: Any, dims: Any) -> Any:  # one transaction per batch
        sizes.append(len(values))
        return insert_values(conn, values, dims)

    monkeypatch.setattr(ledger, "insert_values", spy)
    submit(w, 25)  # queued before the thread starts: 10 or more waiting wakes it at once
    w.start()
    assert wait_for(lambda: w.written == 20)  # long before the 60 s interval: the full batches only
    time.sleep(0.3)
    assert sizes == [10, 10] and w.depth == 5  # the remainder waits for the interval or the next batch...
    submit(w, 5, prefix="more")  # ... and goes with the records that fill it
    assert wait_for(lambda: w.written == 30)
    assert sizes == [10, 10, 10]
    submit(w, 3, prefix="late")  # fewer than a batch: they wait for the interval...
    time.sleep(0.3)
    assert count(db_url) == 30 and w.depth == 3
    w.close()  # ... or for the graceful shutdown, which flushes them
    assert count(db_url) == 33 and w.written == 33 and w.dropped == 0
    assert sizes == [10, 10, 10, 3]


def test_records_are_written_after_the_flush_interval(sqlite_url: str) -> None:
    w = writer(sqlite_url, flush_interval_s=0.05)
    w.start()
    submit(w, 3)
    assert wait_for(lambda: count(sqlite_url) == 3, timeout=5)
    w.close()


def test_a_refused_record_is_isolated_and_every_other_record_written(db_url: str) -> None:
    w = writer(db_url)
    w.start()
    submit(w, 6, prefix="good-a")
    submit(w, 1, prefix="bad", status=1000)  # outside the ledger's status check: the database refuses it
    submit(w, 6, prefix="good-b")
    assert w.flush(30)
    ids = [r["request_id"] for r in rows(db_url)]
    assert len(ids) == 12 and not any(i.startswith("bad") for i in ids)
    assert (w.written, w.rejected, w.dropped) == (12, 1, 0)
    w.close()


@pytest.mark.postgres
def test_an_outage_keeps_records_and_retries_until_the_database_is_back(pg_proxy: tuple[TcpProxy, str]) -> None:
    proxy, url = pg_proxy
    w = writer(url)
    w.start()  # migrates through the proxy
    proxy.down()
    submit(w, 5)
    assert not w.flush(1.0)  # cannot be written while the database is unreachable
    assert w.failures >= 1 and w.depth == 5 and w.written == 0
    proxy.up()
    assert w.flush(30)
    assert count(url) == 5 and w.written == 5 and w.dropped == 0
    w.close()


@pytest.mark.postgres
def test_during_an_outage_the_buffer_is_bounded_and_drops_are_counted(pg_proxy: tuple[TcpProxy, str]) -> None:
    proxy, url = pg_proxy
    w = writer(url, max_buffer=3)
    w.start()
    proxy.down()
    submit(w, 10)  # the writer sleeps (60 s interval, batch of 1000): the queue takes 3, drops 7
    assert (w.depth, w.dropped) == (3, 7)
    body = w.metrics.render()[0].decode() if w.metrics else ""
    assert "owstack_ledger_dropped_records_total 7.0" in body
    assert "owstack_ledger_queue_depth 3.0" in body
    proxy.up()
    assert w.flush(30)
    assert count(url) == 3
    w.close()


@pytest.mark.postgres
def test_shutdown_with_the_database_down_gives_up_after_its_timeout(pg_proxy: tuple[TcpProxy, str]) -> None:
    proxy, url = pg_proxy
    w = writer(url, shutdown_timeout_s=0.5)
    w.start()
    proxy.down()
    submit(w, 4)
    started = time.monotonic()
    w.close()
    assert time.monotonic() - started < 10
    assert (w.written, w.dropped, w.depth) == (0, 4, 0)


def test_a_sqlite_file_that_cannot_be_opened_fails_at_start(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'owstack.db'}"
    with pytest.raises(ConfigError, match=r"^storage\.url: cannot use the database at sqlite:///.*unable to open"):
        writer(url).start()


@pytest.mark.postgres
def test_a_postgres_server_down_at_start_is_waited_for(pg_proxy: tuple[TcpProxy, str]) -> None:
    proxy, url = pg_proxy
    proxy.down()
    w = writer(url)
    w.start()  # not an error: the migration is retried by the writer thread
    submit(w, 2)
    assert not w.flush(0.5)
    proxy.up()
    assert w.flush(30)
    assert count(url) == 2 and w.written == 2
    w.close()
    submit(w, 1)  # after close nothing is queued any more: counted as dropped
    assert w.dropped == 1 and w.depth == 0
