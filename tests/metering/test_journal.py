"""The ledger's journal: batches journaled by the ledger process, moved into ledger_rows later (by the ledger
process when the traffic allows, by readers before they read), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from metering_helpers import TcpProxy, count, make_config, make_ctx, rows, wait_for

from owstack import storage
from owstack.metering import journal
from owstack.metering.costs import Pricing
from owstack.metering.ledger import ROW_COLUMNS, Dims
from owstack.metering.prometheus import Metrics
from owstack.metering.record import row_values, snapshot
from owstack.metering.writer import LedgerWriter

COSTS = (0.001, "selfhost", 0.0005, 0.5, 0.01, "gpt-5.4")


def batch(prefix: str, n: int, **ctx: Any) -> list[tuple[Any, ...]]:
    """`n` ledger rows as the writer makes them (dims as key tuples, received_at as a timestamp)."""
    return [
        row_values(snapshot(make_ctx(f"{prefix}{i:04d}", **ctx)), (10 + i, 5, 0, 0), False, COSTS) for i in range(n)
    ]


def in_table(url: str) -> int:
    """Rows in ledger_rows, without moving anything (what a reader that skips catch_up would see)."""
    with storage.engine(url).connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM ledger_rows")).scalar() or 0)


def journaled(url: str) -> tuple[int, int]:
    with storage.engine(url).connect() as conn:
        return journal.pending(conn)


def test_a_batch_round_trips_through_its_payload() -> None:
    values = batch("rt", 3)
    assert journal.decode(journal.encode(values)) == values  # floats, bools, None and the dims key tuple alike


def test_a_batch_is_stored_compressed(sqlite_url: str) -> None:
    storage.migrate(sqlite_url)
    values = batch("z", 200)
    with storage.engine(sqlite_url).connect() as conn:
        journal.append(conn, journal.encode(values), len(values))
        stored = conn.execute(sa.select(journal.ledger_journal.c.payload)).scalar_one()
    assert len(stored) * 5 < len(journal.encode(values)) and journal.decode(stored) == values
    with pytest.raises(ValueError, match="not a ledger batch"):
        journal.decode(b"\x00garbage")


def test_a_batch_journaled_with_other_columns_is_moved_by_name() -> None:
    """A batch journaled before a migration (a column it lacks is NULL, a column no longer there is ignored)."""
    import orjson

    values = batch("old", 2)
    columns = [c for c in ROW_COLUMNS if c != "utilization"] + ["retired"]
    old = [[v for c, v in zip(ROW_COLUMNS, r, strict=True) if c != "utilization"] + ["x"] for r in values]
    got = journal.decode(orjson.dumps({"columns": columns, "rows": old}))
    at = ROW_COLUMNS.index("utilization")
    assert got == [(*r[:at], None, *r[at + 1 :]) for r in values]


def test_journaled_batches_move_oldest_first_and_only_once(db_url: str) -> None:
    storage.migrate(db_url)
    eng = storage.engine(db_url)
    first, second = batch("a", 3), batch("b", 4)
    with eng.connect() as conn:
        journal.append(conn, journal.encode(first), len(first))
        journal.append(conn, journal.encode(second), len(second))
        journal.append(conn, journal.encode(first), len(first))  # sent again after a lost answer
        assert journal.pending(conn) == (3, 10)
        conn.rollback()  # end the read's transaction: expand runs its own
        moved = journal.expand(conn, Dims(), max_batches=1)
        assert (moved.batches, moved.rows, moved.rejected) == (1, 3, 0)
    assert in_table(db_url) == 3 and journaled(db_url) == (2, 7)
    assert [r["request_id"] for r in rows(db_url)] == [
        *(f"a{i:04d}" for i in range(3)),
        *(f"b{i:04d}" for i in range(4)),
    ]
    assert journaled(db_url) == (0, 0)  # the reader moved the rest; the repeated batch added nothing
    assert count(db_url) == 7


def test_a_refused_row_is_isolated_when_its_batch_moves(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    storage.migrate(db_url)
    values = [*batch("good-a", 5), *batch("bad", 1, status=1000), *batch("good-b", 5)]
    with storage.engine(db_url).connect() as conn:
        journal.append(conn, journal.encode(values), len(values))
        with caplog.at_level(logging.ERROR, logger="owstack.metering.journal"):
            moved = journal.expand(conn, Dims())
    assert (moved.batches, moved.rows, moved.rejected) == (1, 11, 1)
    assert "refused the record of request bad0000" in caplog.text
    ids = [r["request_id"] for r in rows(db_url)]
    assert len(ids) == 10 and not any(i.startswith("bad") for i in ids)
    assert journaled(db_url) == (0, 0)


def test_an_unreadable_batch_is_dropped_and_counted(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    storage.migrate(sqlite_url)
    good = batch("g", 2)
    with storage.engine(sqlite_url).connect() as conn:
        journal.append(conn, b'{"not": "a batch"}', 4)
        journal.append(conn, journal.encode(good), 2)
        with caplog.at_level(logging.ERROR, logger="owstack.metering.journal"):
            moved = journal.expand(conn, Dims())
    assert (moved.batches, moved.rows, moved.rejected) == (2, 6, 4)
    assert "unreadable" in caplog.text and count(sqlite_url) == 2


def test_two_expanders_at_once_move_every_batch_once(db_url: str) -> None:
    storage.migrate(db_url)
    eng = storage.engine(db_url)
    with eng.connect() as conn:
        for b in range(40):
            values = batch(f"c{b:02d}-", 25)
            journal.append(conn, journal.encode(values), len(values))
    totals: list[journal.Moved] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with eng.connect() as conn:
                totals.append(journal.expand(conn, Dims()))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(m.batches for m in totals) == 40 and sum(m.rows for m in totals) == 1000
    assert in_table(db_url) == 1000 and journaled(db_url) == (0, 0)


def test_catch_up_on_a_database_without_a_journal_moves_nothing(sqlite_url: str) -> None:
    with storage.engine(sqlite_url).connect() as conn:
        conn.execute(sa.text("CREATE TABLE other (x INTEGER)"))
        conn.commit()
    assert journal.catch_up(sqlite_url) == journal.Moved()


def test_the_downgrade_moves_journaled_batches_before_dropping_the_journal(db_url: str) -> None:
    from alembic import command

    from owstack.storage.migrate import alembic_config

    storage.migrate(db_url)
    values = batch("down", 3)
    eng = storage.engine(db_url)
    with eng.connect() as conn:
        journal.append(conn, journal.encode(values), len(values))
    with eng.connect() as conn, conn.begin():
        command.downgrade(alembic_config(connection=conn), "0004_request_id_unindexed")
    assert not sa.inspect(eng).has_table("ledger_journal")
    assert in_table(db_url) == 3


# the ledger process's policy ---------------------------------------------------------------------------------


def process_writer(url: str, **options: Any) -> LedgerWriter:
    config = make_config(url)
    defaults: dict[str, Any] = {"batch_size": 10, "flush_interval_s": 60.0, "retry_max_s": 0.2, "process": True}
    metrics = Metrics.from_config(config)
    return LedgerWriter(url, pricing=Pricing.from_config(config), metrics=metrics, **{**defaults, **options})


def submit(w: LedgerWriter, n: int, prefix: str) -> None:
    for i in range(n):
        w.submit(snapshot(make_ctx(f"{prefix}{i:04d}")))


def test_batches_wait_while_the_cpu_is_busy_and_move_once_it_has_time_to_spare(sqlite_url: str) -> None:
    """The ledger process runs on the CPU of the thread that started it (here one CPU, shared with a
    process spinning on it): it journals batches at once and moves them only when that CPU has time to spare."""
    cpu = max(os.sched_getaffinity(0))
    spinner = subprocess.Popen(
        [sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )
    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})  # inherited by the writer thread, and by the ledger process it starts
        w = process_writer(sqlite_url)
        w.start()
    finally:
        os.sched_setaffinity(0, saved)
    try:
        for round_ in range(3):
            submit(w, 10, prefix=f"busy{round_}-")
            assert wait_for(lambda r=round_: w.written == 10 * (r + 1))
        time.sleep(1.0)  # four measuring windows, the CPU busy in each
        assert in_table(sqlite_url) == 0 and journaled(sqlite_url) == (3, 30) and w.journal_rows == 30
        assert w.metrics is not None and "owstack_ledger_journal_rows 30.0" in w.metrics.render()[0].decode()
    finally:
        spinner.kill()
        spinner.wait()
    assert wait_for(lambda: in_table(sqlite_url) == 30, timeout=15)  # the CPU is free: the batches move
    assert journaled(sqlite_url) == (0, 0)
    w.close()


def test_over_its_limit_the_journal_moves_a_batch_for_each_batch_in(sqlite_url: str) -> None:
    w = process_writer(sqlite_url, journal_spare_cpu=2.0, journal_max_rows=20)
    w.start()
    for round_ in range(6):
        submit(w, 10, prefix=f"over{round_}-")
        assert wait_for(lambda r=round_: w.written == 10 * (r + 1))
    # never idle, so only the limit moves batches: the journal stays near 20 rows
    assert wait_for(lambda: journaled(sqlite_url)[1] <= 30 and in_table(sqlite_url) >= 30)
    assert in_table(sqlite_url) + journaled(sqlite_url)[1] == 60
    w.close()


def test_flush_moves_the_journal_and_close_moves_what_is_left(sqlite_url: str) -> None:
    w = process_writer(sqlite_url, journal_spare_cpu=2.0)
    w.start()
    submit(w, 25, prefix="f")
    assert w.flush(30)  # everything submitted is in the ledger's table, not only journaled
    assert in_table(sqlite_url) == 25 and journaled(sqlite_url) == (0, 0) and w.journal_rows == 0
    submit(w, 30, prefix="g")
    assert wait_for(lambda: w.written == 55)
    assert in_table(sqlite_url) == 25
    w.close()  # the ledger process moves its journal before it exits
    assert in_table(sqlite_url) == 55 and journaled(sqlite_url) == (0, 0)


def test_a_killed_ledger_process_leaves_its_journal_to_the_next(db_url: str) -> None:
    import os
    import signal

    from owstack.metering.sink import ProcessSink

    w = process_writer(db_url, journal_spare_cpu=2.0)
    w.start()
    submit(w, 30, prefix="k")
    assert wait_for(lambda: w.written == 30)
    sink = w.sink
    assert isinstance(sink, ProcessSink) and sink.pid is not None
    os.kill(sink.pid, signal.SIGKILL)
    assert journaled(db_url) == (3, 30) and in_table(db_url) == 0  # durable, not yet moved
    submit(w, 10, prefix="after")
    assert w.flush(30)  # a new ledger process: the old journal moves with the new batch
    assert count(db_url) == 40 and journaled(db_url) == (0, 0)
    assert (w.written, w.rejected, w.dropped) == (40, 0, 0)
    w.close()


@pytest.mark.postgres
def test_a_flush_during_an_outage_fails_and_the_journal_moves_once_the_database_is_back(
    pg_proxy: tuple[TcpProxy, str],
) -> None:
    proxy, url = pg_proxy
    w = process_writer(url, journal_spare_cpu=2.0)
    w.start()
    submit(w, 20, prefix="o")
    assert wait_for(lambda: w.written == 20)  # journaled
    proxy.down()
    assert not w.flush(1.0)  # the ledger process cannot move them while the database is unreachable
    assert w.failures >= 1 and w.written == 20 and w.dropped == 0
    proxy.up()
    assert w.flush(30)
    assert count(url) == 20 and journaled(url) == (0, 0)
    w.close()


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_under_a_cgroup_cpu_limit_the_limit_used_by_others_leaves_nothing_spare(tmp_path: Any, layout: str) -> None:
    """A container's CPU limit (Kubernetes resources.limits.cpu): the host may be idle while the container
    has used its whole quota; then nothing is spare for moving batches."""
    from owstack.metering.ledger_process import Spare, cgroup_quota

    if layout == "v2":
        (tmp_path / "cpu.max").write_text("max 100000\n")
        assert cgroup_quota(tmp_path) is None  # no limit
        (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU
        usage, unit = tmp_path / "cpu.stat", 1e-6

        def write(seconds: float) -> None:
            usage.write_text(f"usage_usec {round(seconds / unit)}\nuser_usec 0\nsystem_usec 0\n")
    else:
        for name in ("cpu", "cpuacct"):
            (tmp_path / name).mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
        assert cgroup_quota(tmp_path) is None
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
        usage, unit = tmp_path / "cpuacct" / "cpuacct.usage", 1e-9

        def write(seconds: float) -> None:
            usage.write_text(f"{round(seconds / unit)}\n")

    used = 100.0
    write(used)
    quota = cgroup_quota(tmp_path)
    assert quota is not None and quota[0] == 0.5
    spare = Spare(cgroup_root=tmp_path)
    started = time.monotonic()
    time.sleep(0.3)
    write(used + 0.5 * (time.monotonic() - started))  # others used the whole half CPU meanwhile
    share = spare.share()
    assert share is not None and share <= 0.1
    time.sleep(0.3)  # nobody used any of it since: spare, as far as the limit goes (the host decides the rest)
    share = spare.share()
    assert share is not None and share > 0.3
