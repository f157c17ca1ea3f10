"""The ledger writer: batches, flush on close, all-or-nothing with bisection, outage and retry, bounds; each
with the SQL in the ledger's child process (the default) and on the writer thread."""

from __future__ import annotations

import time
from typing import Any

import pytest
from metering_helpers import TcpProxy, count, make_config, make_ctx, rows, wait_for

from owstack.errors import ConfigError
from owstack.metering.costs import Pricing
from owstack.metering.prometheus import Metrics
from owstack.metering.record import snapshot
from owstack.metering.writer import LedgerWriter


@pytest.fixture(params=["process", "thread"])
def mode(request: pytest.FixtureRequest) -> str:
    """Where the writer runs its SQL (`metering.writer`)."""
    return str(request.param)


def writer(url: str, mode: str, **options: Any) -> LedgerWriter:
    config = make_config(url)
    defaults: dict[str, Any] = {
        "batch_size": 1000,
        "flush_interval_s": 60.0,
        "retry_max_s": 0.2,
        "process": mode == "process",
    }
    return LedgerWriter(
        url, pricing=Pricing.from_config(config), metrics=Metrics.from_config(config), **{**defaults, **options}
    )


def submit(w: LedgerWriter, n: int, prefix: str = "r", **ctx: Any) -> None:
    for i in range(n):
        w.submit(snapshot(make_ctx(f"{prefix}{i:04d}", **ctx)))


def test_records_go_in_full_batches_and_close_flushes_the_rest(
    db_url: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    w = writer(db_url, mode, batch_size=10)
    sizes: list[int] = []
    write = w.sink.write

    def spy(values: Any) -> Any:  # one transaction per batch
        sizes.append(len(values))
        return write(values)

    monkeypatch.setattr(w.sink, "write", spy)
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


def test_records_are_written_after_the_flush_interval(sqlite_url: str, mode: str) -> None:
    w = writer(sqlite_url, mode, flush_interval_s=0.05)
    w.start()
    submit(w, 3)
    assert wait_for(lambda: count(sqlite_url) == 3)
    w.close()


def test_a_refused_record_is_isolated_and_every_other_record_written(db_url: str, mode: str) -> None:
    w = writer(db_url, mode)
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
def test_an_outage_keeps_records_and_retries_until_the_database_is_back(
    pg_proxy: tuple[TcpProxy, str], mode: str
) -> None:
    proxy, url = pg_proxy
    w = writer(url, mode)
    w.start()  # migrates through the proxy
    proxy.down()
    submit(w, 5)
    w.flush(0)  # wakes the writer for everything queued, without waiting
    # the write fails (however long starting the ledger process takes on a busy machine) and is kept
    assert wait_for(lambda: w.failures >= 1, timeout=120)
    assert not w.flush(0.5)  # cannot be written while the database is unreachable
    assert w.depth == 5 and w.written == 0
    proxy.up()
    assert w.flush(30)
    assert count(url) == 5 and w.written == 5 and w.dropped == 0
    w.close()


@pytest.mark.postgres
def test_during_an_outage_the_buffer_is_bounded_and_drops_are_counted(
    pg_proxy: tuple[TcpProxy, str], mode: str
) -> None:
    proxy, url = pg_proxy
    w = writer(url, mode, max_buffer=3)
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
def test_shutdown_with_the_database_down_gives_up_after_its_timeout(pg_proxy: tuple[TcpProxy, str], mode: str) -> None:
    proxy, url = pg_proxy
    w = writer(url, mode, shutdown_timeout_s=0.5)
    w.start()
    proxy.down()
    submit(w, 4)
    w.close()  # gives up after shutdown_timeout_s (were it to wait on, the records would not count as dropped)
    assert (w.written, w.dropped, w.depth) == (0, 4, 0)


def test_a_sqlite_file_that_cannot_be_opened_fails_at_start(tmp_path: Any, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'owstack.db'}"
    with pytest.raises(ConfigError, match=r"^storage\.url: cannot use the database at sqlite:///.*unable to open"):
        writer(url, mode).start()


@pytest.mark.postgres
def test_a_postgres_server_down_at_start_is_waited_for(pg_proxy: tuple[TcpProxy, str], mode: str) -> None:
    proxy, url = pg_proxy
    proxy.down()
    w = writer(url, mode)
    w.start()  # not an error: the migration is retried by the writer thread
    submit(w, 2)
    assert not w.flush(0.5)
    proxy.up()
    assert w.flush(30)
    assert count(url) == 2 and w.written == 2
    w.close()
    submit(w, 1)  # after close nothing is queued any more: counted as dropped
    assert w.dropped == 1 and w.depth == 0


def test_a_ledger_process_that_dies_is_replaced_and_loses_nothing(db_url: str) -> None:
    import os
    import signal

    from owstack.metering.sink import ProcessSink

    w = writer(db_url, "process")
    w.start()
    submit(w, 3, prefix="before")
    assert w.flush(30)
    sink = w.sink
    assert isinstance(sink, ProcessSink) and sink.pid is not None and sink.pid != os.getpid()
    first = sink.pid
    with open(f"/proc/{first}/cmdline", "rb") as fh:  # the URL (and any password in it) goes over the pipe
        assert db_url.encode() not in fh.read()
    os.kill(first, signal.SIGKILL)
    submit(w, 4, prefix="after")
    assert w.flush(30)  # the batch sent to the dead process fails as an outage, and goes to a new one
    assert sink.pid not in (None, first)
    assert count(db_url) == 7 and (w.written, w.rejected, w.dropped) == (7, 0, 0)
    w.close()
    assert sink.pid is None  # close ends the process


def test_an_in_memory_database_is_written_by_the_thread() -> None:
    from owstack.metering.sink import InlineSink, ProcessSink

    assert isinstance(writer("sqlite:////tmp/x.db", "process").sink, ProcessSink)
    assert isinstance(writer("sqlite:////tmp/x.db", "thread").sink, InlineSink)
    assert isinstance(writer("sqlite:///:memory:", "process").sink, InlineSink)  # it exists in this process only
