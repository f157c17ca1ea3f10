"""The ledger's write-ahead log: group commit, release, leftovers of a process that died (its own slot or
another's), torn tails, reading back, a failed write that the next batch recovers from; and the writer on
top of it: leftovers replayed into the database once, records let go during an outage read back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from metering_helpers import TcpProxy, count, make_config, make_ctx, rows, wait_for

from owstack.metering.costs import Pricing
from owstack.metering.record import from_wal, snapshot, wal_payload
from owstack.metering.wal import Wal, WalUnavailable, read_segment
from owstack.metering.writer import LedgerWriter


def append_all(wal: Wal, payloads: list[bytes]) -> list[int]:
    async def main() -> list[int]:
        pairs = [wal.append(p) for p in payloads]
        await asyncio.gather(*(f for _, f in pairs))
        return [seq for seq, _ in pairs]

    return asyncio.run(main())


def files(wal: Wal) -> list[str]:
    assert wal.slot is not None
    return sorted(p.name for p in wal.slot.glob("*.wal"))


def test_records_are_committed_in_order_and_released_segments_go(tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal", segment_records=4)
    assert wal.open() == []
    seqs = [seq for b in range(5) for seq in append_all(wal, [f"r{2 * b + i}".encode() for i in range(2)])]
    assert seqs == list(range(1, 11)) and wal.committed_seq == 10
    assert [n for n, _ in wal.read_from(3, 100)] == list(range(3, 11))
    assert [p for _, p in wal.read_from(9, 1)] == [b"r8"]
    assert len(files(wal)) == 3  # a batch is never split; a new segment starts once 4 records are in one
    wal.release(8)  # every segment whose last record is <= 8 goes; the current one stays
    left = files(wal)
    assert left and all(int(name.rsplit("-", 1)[1][:16]) > 5 for name in left)
    assert next(n for n, _ in wal.read_from(1, 100)) > 5
    wal.release(10)
    wal.close()  # everything released: nothing left for the next process
    assert list((tmp_path / "wal").glob("*/*.wal")) == []


def test_a_process_that_died_leaves_its_records_to_the_next(tmp_path: Path) -> None:
    """A child process appends 5 records and is killed (SIGKILL) with its slot held: the next Wal adopts
    them, even while another live process holds another slot."""
    directory = tmp_path / "wal"
    code = (
        "import asyncio, os, signal\n"
        "from pathlib import Path\n"
        "from owstack.metering.wal import Wal\n"
        f"w = Wal(Path({str(directory)!r}))\n"
        "w.open()\n"
        "async def main():\n"
        "    await asyncio.gather(*(w.append(f'dead-{i}'.encode())[1] for i in range(5)))\n"
        "asyncio.run(main())\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    live = Wal(directory)
    live.open()  # holds slot-0: the dead process wrote in slot-1
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, timeout=120)
    assert proc.returncode == -9
    nxt = Wal(directory)
    leftovers = nxt.open()
    got = [p for f in leftovers for p in read_segment(f)]
    assert got == [f"dead-{i}".encode() for i in range(5)]
    assert nxt.slot is not None and nxt.slot.name == "slot-1"  # a free slot (the dead one's), not the live one's
    for f in leftovers:
        nxt.discard(f)
    nxt.close()
    live.close()


def test_a_torn_tail_ends_the_replay_at_the_last_whole_record(tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal")
    wal.open()
    append_all(wal, [b"one", b"two", b"three"])
    assert wal.slot is not None
    segment = next(wal.slot.glob("*.wal"))
    wal._drop_fd()
    wal._thread = None  # as if the process died here (no close: the segment stays)
    size = wal._segments[-1].size
    data = segment.read_bytes()
    assert len(data) > size and data[size:] == bytes(len(data) - size)  # zero-filled ahead of the records
    assert list(read_segment(segment)) == [b"one", b"two", b"three"]  # the zeros end it quietly
    segment.write_bytes(data[: size - 2] + bytes(64))  # the last record torn mid-write, zeros after it
    assert list(read_segment(segment)) == [b"one", b"two"]
    segment.write_bytes(data[: size - 2])  # the same without the zeros (a file cut short)
    assert list(read_segment(segment)) == [b"one", b"two"]


def test_segments_are_written_in_place_and_cut_to_their_records(tmp_path: Path) -> None:
    """The log writes into zeros it laid ahead (a batch's fsync then flushes data only, the file's size and
    blocks unchanged), extends them as records come, and cuts a segment to its records when it moves on to
    the next one and when it closes."""
    from owstack.metering import wal as wal_module

    wal = Wal(tmp_path / "wal", segment_records=4)
    wal.open()
    append_all(wal, [b"a" * 100, b"b" * 100])
    assert wal.slot is not None
    (first,) = wal.slot.glob("*.wal")
    frames = 2 * (wal_module.FRAME.size + 100)
    assert first.stat().st_size == frames + wal_module.PREALLOCATE
    append_all(wal, [b"c" * 100, b"d" * 100])
    assert first.stat().st_size == frames + wal_module.PREALLOCATE  # overwritten in place, not grown
    append_all(wal, [b"e"])  # a fifth record starts the next segment: the first is cut to its records
    assert first.stat().st_size == 2 * frames
    assert list(read_segment(first)) == [b"a" * 100, b"b" * 100, b"c" * 100, b"d" * 100]
    wal.close()  # nothing released: the current segment stays, cut
    second = next(p for p in wal.slot.glob("*.wal") if p != first)
    assert second.stat().st_size == wal_module.FRAME.size + 1 and list(read_segment(second)) == [b"e"]


def test_a_failed_write_fails_its_batch_and_the_next_batch_recovers(tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal")
    wal.open()
    append_all(wal, [b"before"])
    assert wal._fd is not None
    os.close(wal._fd)  # the file descriptor goes bad (as after an I/O error): the next write fails

    async def main() -> tuple[Any, Any]:
        _, failing = wal.append(b"lost")
        with pytest.raises(WalUnavailable):
            await failing
        error = wal.error
        await wal.append(b"after")[1]  # a new segment: written again
        return error, wal.error

    error, after = asyncio.run(main())
    assert error is not None and after is None
    assert [p for _, p in wal.read_from(1, 10)] == [b"before", b"after"]
    wal._fd = None
    wal.close()


def test_a_record_survives_the_log_without_its_text() -> None:
    ctx = make_ctx("wal-1", output=["Hello ", "world"], messages=[{"role": "user", "content": "Hi there"}])
    record = snapshot(ctx)
    back = from_wal(wal_payload(record))
    assert (back.request_id, back.row_id, back.status, back.backend, back.estimated) == (
        "wal-1",
        record.row_id,
        200,
        "gpu",
        True,
    )
    assert back.output_text == [] and back.messages is None  # no prompt or output on disk
    assert back.usage.completion_tokens == 3 and back.usage.prompt_tokens > 0  # estimates, 4 characters each
    assert [(a.backend, a.outcome) for a in back.attempts] == [("gpu", "ok")]
    with pytest.raises(ValueError):
        from_wal(b'[2, "from a future format"]')


# the writer on top of the log ---------------------------------------------------------------------------------


def durable_writer(url: str, directory: Path, **options: Any) -> LedgerWriter:
    config = make_config(url)
    defaults: dict[str, Any] = {"batch_size": 10, "flush_interval_s": 0.05, "retry_max_s": 0.2, "process": True}
    return LedgerWriter(url, pricing=Pricing.from_config(config), wal=Wal(directory), **{**defaults, **options})


def record(w: LedgerWriter, n: int, prefix: str) -> None:
    """What the meter stage does for each request: log, then queue (and wait for the log)."""

    async def main() -> None:
        assert w.wal is not None
        futures = []
        for i in range(n):
            p = snapshot(make_ctx(f"{prefix}{i:04d}"))
            p.seq, durable = w.wal.append(wal_payload(p))
            futures.append(durable)
            w.submit(p)
        await asyncio.gather(*futures)

    asyncio.run(main())


def test_leftovers_are_replayed_into_the_ledger_once(db_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    first = durable_writer(db_url, directory, flush_interval_s=60.0, batch_size=1000)
    first.start()
    record(first, 7, "crash-")
    assert count(db_url) == 0  # durable in the log, not in the database yet (the writer waits 60 s)
    assert first.wal is not None and first.wal._lock_fd is not None
    first._queue.clear()  # the process dies: its memory is gone, its slot's lock released, no flush
    os.close(first.wal._lock_fd)
    first.wal._lock_fd = None
    second = durable_writer(db_url, directory)
    second.start()
    assert second.flush(60)
    assert sorted(r["request_id"] for r in rows(db_url)) == [f"crash-{i:04d}" for i in range(7)]
    assert second.replayed == 7
    second.close()
    third = durable_writer(db_url, directory)  # nothing left to replay, nothing written twice
    third.start()
    assert third.flush(60) and third.replayed == 0 and count(db_url) == 7
    third.close()


@pytest.mark.postgres
def test_records_let_go_during_an_outage_are_read_back_from_the_log(
    pg_proxy: tuple[TcpProxy, str], tmp_path: Path
) -> None:
    proxy, url = pg_proxy
    w = durable_writer(url, tmp_path / "wal", max_buffer=5)
    w.start()
    proxy.down()
    record(w, 30, "long-")  # the queue takes 5; 25 live in the log only
    assert w.backlog is not None and w.backlog.let_go == 25 and w.dropped == 0
    proxy.up()
    assert wait_for(lambda: w.flush(5), timeout=120)
    assert sorted(r["request_id"] for r in rows(url)) == [f"long-{i:04d}" for i in range(30)]
    assert w.backlog.floor is None
    w.close()
    assert list((tmp_path / "wal").glob("*/*.wal")) == []  # all released


def test_the_next_process_never_appends_to_a_leftover_it_is_replaying(tmp_path: Path) -> None:
    """Sequence numbers start at 1 in every process: its segments must still never reuse a leftover's name (it
    would append to the file it replays and then delete it: 92 of 1,213 answered requests lost in a kill -9
    round of bench/fault_suite.py before segment names carried the process)."""
    first = Wal(tmp_path / "wal")
    first.open()
    append_all(first, [b"old-1", b"old-2"])
    assert first._lock_fd is not None
    os.close(first._lock_fd)  # the first process dies
    first._lock_fd = None
    second = Wal(tmp_path / "wal")
    leftovers = second.open()
    append_all(second, [b"new-1"])  # while the leftover is still being replayed
    assert [p for f in leftovers for p in read_segment(f)] == [b"old-1", b"old-2"]
    assert second.slot is not None and len(list(second.slot.glob("*.wal"))) == 2
    for f in leftovers:
        second.discard(f)
    assert [p for _, p in second.read_from(1, 10)] == [b"new-1"]
    second.release(1)
    second.close()
