"""The ledger's journal: batches journaled by the ledger process, moved into ledger_rows later (by the ledger
process when the traffic allows, by readers before they read), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import threading
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

    from owstack.storage.migrator import alembic_config

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


class Load:
    """A scripted CPU reader and clock for the ledger process's policy: `share()` returns what the test set."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.spare: float | None = 0.0
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def share(self) -> float | None:
        self.reads += 1
        return self.spare


def append_batch(ledger: Any, prefix: str, n: int) -> list[Any]:
    from owstack.metering.sink import APPEND, COUNT

    return ledger.handle(APPEND, COUNT.pack(n) + journal.encode(batch(prefix, n)))


def test_batches_wait_while_the_cpu_is_busy_and_move_once_it_has_time_to_spare(sqlite_url: str) -> None:
    """The ledger process journals each batch at once and moves journaled batches into the table only in a
    window in which its CPUs had `spare_cpu` of their time to spare (the load is scripted: no host load)."""
    from owstack.metering.ledger_process import Ledger

    storage.migrate(sqlite_url)
    load = Load()
    ledger = Ledger(sqlite_url, max_rows=1000, spare_cpu=0.25, spare=load.share, clock=load.clock)
    try:
        for round_ in range(3):
            assert append_batch(ledger, f"busy{round_}-", 10) == ["ok", {"rejected": 0, "journal": 10 * (round_ + 1)}]
        assert ledger.wait_s() == pytest.approx(Ledger.WINDOW_S)  # a window is being measured: wait it out
        for _ in range(4):  # four windows, the CPU busy (10% spare) in each: nothing moves
            load.now += Ledger.WINDOW_S
            load.spare = 0.1
            assert ledger.wait_s() == pytest.approx(Ledger.WINDOW_S)
        assert in_table(sqlite_url) == 0 and journaled(sqlite_url) == (3, 30) and ledger.journal_rows == 30
        load.now += Ledger.WINDOW_S
        load.spare = 0.6  # the CPU had time to spare in the last window: move, one batch per turn
        moved = 0
        while (wait := ledger.wait_s()) == 0.0:
            assert ledger.move()
            moved += 1
        assert wait is None and moved == 3  # nothing journaled: wait for input
        assert in_table(sqlite_url) == 30 and journaled(sqlite_url) == (0, 0)
    finally:
        ledger.close()


def test_without_a_cpu_reading_a_window_without_input_counts_as_spare(sqlite_url: str) -> None:
    """Where no CPU figure can be read (not Linux), the batches move after a window in which none arrived."""
    from owstack.metering.ledger_process import Ledger

    storage.migrate(sqlite_url)
    load = Load()
    load.spare = None
    ledger = Ledger(sqlite_url, max_rows=1000, spare_cpu=0.25, spare=load.share, clock=load.clock)
    try:
        append_batch(ledger, "a", 5)
        load.now += Ledger.WINDOW_S
        append_batch(ledger, "b", 5)  # input in this window: not spare
        assert ledger.wait_s() == pytest.approx(Ledger.WINDOW_S)
        load.now += Ledger.WINDOW_S  # a quiet window
        assert ledger.wait_s() == 0.0 and ledger.move() and ledger.move()
        assert ledger.wait_s() is None and in_table(sqlite_url) == 10
    finally:
        ledger.close()


def test_the_ledger_process_moves_batches_by_itself_when_every_window_is_spare(sqlite_url: str) -> None:
    """End to end through the ledger process: with `journal_spare_cpu: 0` every window is spare, so batches
    reach the table without a flush (and with 2.0 none is, as the tests below use)."""
    w = process_writer(sqlite_url, journal_spare_cpu=0.0)
    w.start()
    submit(w, 10, prefix="spare-")
    assert wait_for(lambda: w.written == 10, timeout=60)
    assert wait_for(lambda: in_table(sqlite_url) == 10, timeout=60)
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
    has used its whole quota; then nothing is spare for moving batches. Every input is a file or a function
    of the test's (/proc/stat, the cgroup files, the clock, the process's own CPU time)."""
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

    stat = tmp_path / "stat"
    tick_hz = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in clock ticks

    def host(busy_s: float, idle_s: float) -> None:  # cpu0: user nice system idle iowait irq softirq steal
        busy, idle = round(busy_s * tick_hz), round(idle_s * tick_hz)
        stat.write_text(f"cpu  0 0 0 0 0 0 0 0\ncpu0 {busy} 0 0 {idle} 0 0 0 0\n")

    now, used = 50.0, 100.0
    write(used)
    host(10.0, 10.0)
    quota = cgroup_quota(tmp_path)
    assert quota is not None and quota[0] == 0.5
    spare = Spare(cgroup_root=tmp_path, proc_stat=stat, cpus={0}, clock=lambda: now, own_seconds=lambda: 0.0)
    now += 0.3
    write(used + 0.5 * 0.3)  # others used the whole half CPU meanwhile
    host(10.0, 10.3)  # while the host's CPU was idle
    share = spare.share()
    assert share is not None and share == pytest.approx(0.0, abs=0.02)
    now += 0.3  # nobody used any of the limit since, and the host was idle: all spare
    host(10.0, 10.6)
    share = spare.share()
    assert share is not None and share == pytest.approx(1.0, abs=0.02)
    now += 0.4  # the limit unused, but the host's CPU three-quarters busy: the host decides
    host(10.3, 10.7)
    share = spare.share()
    assert share is not None and share == pytest.approx(0.25, abs=0.03)


def test_the_ledger_process_whose_gateway_died_exits_quietly(sqlite_url: str) -> None:
    """kill -9 of the gateway leaves its ledger process answering into a closed pipe: it moves what is
    journaled and exits with one warning, not a traceback (the kill -9 tests' logs had one per crash)."""
    import subprocess
    import sys

    from owstack.metering.sink import SETTINGS, SETTLE, send

    proc = subprocess.Popen(
        [sys.executable, "-m", "owstack.metering.ledger_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.close()  # the gateway is gone before the answer
    send(proc.stdin, SETTINGS, b'{"url": "%s", "max_rows": 1000, "spare_cpu": 0.25}' % sqlite_url.encode())
    send(proc.stdin, SETTLE, b"")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err, err.decode()
    assert b"the gateway is gone" in err
