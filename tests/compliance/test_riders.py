"""The ledger's write-ahead log riding with the audit writer (`storage.durable`): a busy audit writer commits
the log's batches with its own, an idle one leaves them to the log's thread (the fsyncs overlap); the log's
own thread takes over whenever the audit writer cannot (failed, closed, or a batch left untaken); every
record on disk, in order, before its future completes."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from owstack.compliance.config import AuditSection
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditUnavailable, AuditWriter
from owstack.metering import wal as wal_module
from owstack.metering.wal import Wal, read_segment

from .conftest import read_lines, stream_dir


def committers(wal: Wal) -> list[str]:
    """Record the name of the thread that completes each batch of `wal`."""
    names: list[str] = []
    finish = wal._finish_batch

    def spy(*args: Any) -> None:
        names.append(threading.current_thread().name)
        finish(*args)

    wal._finish_batch = spy  # type: ignore[method-assign]
    return names


def segments_payloads(wal: Wal) -> list[bytes]:
    assert wal.slot is not None
    return [p for seg in sorted(wal.slot.glob("*.wal")) for p in read_segment(seg)]


async def ride(writer: AuditWriter, wal: Wal, tasks: int, each: int) -> list[int]:
    """Requests as the gateway makes them: a ledger record in the log, then an audit record, awaited together."""

    async def task(t: int) -> list[int]:
        seqs = []
        for i in range(each):
            seq, durable = wal.append(f"t{t}-{i}".encode())
            writer.carry(wal)
            await asyncio.gather(writer.append({"type": "test.request", "t": t, "i": i}), durable)
            seqs.append(seq)
        return seqs

    return [s for r in await asyncio.gather(*(task(t) for t in range(tasks))) for s in r]


@pytest.mark.parametrize("busy", [True, None])
def test_the_audit_thread_commits_the_riding_log_in_order(
    section: AuditSection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy: bool | None
) -> None:
    """busy=True: the audit writer always counts as busy, so it commits every batch; None: as it comes (a
    mix of the two threads that depends on timing); either way every record once, in order."""
    if busy:
        monkeypatch.setattr(AuditWriter, "busy", property(lambda self: True))
    wal = Wal(tmp_path / "wal", segment_records=64)
    wal.open()
    writer = AuditWriter(section).start()
    names = committers(wal)
    seqs = asyncio.run(ride(writer, wal, tasks=16, each=20))
    assert sorted(seqs) == list(range(1, 321)) and wal.committed_seq == 320 and wal.records_written == 320
    assert set(names) <= {"owstack-ledger-wal", f"audit-writer-{writer.stream}"}
    if busy:
        assert set(names) == {f"audit-writer-{writer.stream}"}
        assert len(names) < 320  # group commit: batches, not one commit per record
    payloads = segments_payloads(wal)
    assert len(payloads) == 320 and len(set(payloads)) == 320
    assert [n for n, _ in wal.read_from(1, 1000)] == list(range(1, 321))
    writer.close()
    wal.close()
    records = [r for seg in sorted(stream_dir(section).glob("seg-*.jsonl")) for r in read_lines(seg)]
    assert sum(r["type"] == "test.request" for r in records) == 320
    assert verify(Path(section.directory)).ok


def test_a_carried_batch_is_fsynced_beside_the_audit_batch(
    section: AuditSection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit thread's fsync and the riding log's run at the same time (the disk serves both flushes as
    one): while an audit batch is being fsynced, the carried ledger batch is fsynced on the helper thread."""
    monkeypatch.setattr(AuditWriter, "busy", property(lambda self: True))
    wal = Wal(tmp_path / "wal", segment_records=64)
    wal.open()
    writer = AuditWriter(section).start()
    real = os.fdatasync
    lock = threading.Lock()
    auditing = 0  # audit fsyncs in progress
    beside: list[str] = []  # the threads of the ledger fsyncs that ran during an audit fsync

    def fdatasync(fd: int) -> None:
        nonlocal auditing
        if fd == writer._fd:
            with lock:
                auditing += 1
            try:
                time.sleep(0.02)  # a slow disk: the riders' fsync has time to start beside it
                real(fd)
            finally:
                with lock:
                    auditing -= 1
            return
        if fd == wal._fd:
            with lock:
                if auditing:
                    beside.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    seqs = asyncio.run(ride(writer, wal, tasks=8, each=5))
    monkeypatch.setattr(os, "fdatasync", real)
    assert sorted(seqs) == list(range(1, 41)) and wal.committed_seq == 40
    assert "audit-writer-riders" in beside and set(beside) <= {"audit-writer-riders", "owstack-ledger-wal"}
    writer.close()
    wal.close()
    assert verify(Path(section.directory)).ok


def test_the_log_commits_on_its_own_once_the_audit_writer_stops(section: AuditSection, tmp_path: Path) -> None:
    wal = Wal(tmp_path / "wal")
    wal.open()
    writer = AuditWriter(section).start()
    asyncio.run(ride(writer, wal, tasks=2, each=3))
    writer.close()
    assert wal.carrier is None
    names = committers(wal)

    async def alone() -> None:
        await asyncio.gather(*(wal.append(b"after")[1] for _ in range(5)))

    asyncio.run(alone())
    assert wal.committed_seq == 11 and names and all(n == "owstack-ledger-wal" for n in names)
    wal.close()


def test_the_log_commits_on_its_own_while_the_audit_log_cannot_be_written(
    section: AuditSection, tmp_path: Path
) -> None:
    wal = Wal(tmp_path / "wal")
    wal.open()
    writer = AuditWriter(section).start()
    asyncio.run(ride(writer, wal, tasks=1, each=2))
    full = os.open("/dev/full", os.O_WRONLY)
    os.close(writer._fd)  # type: ignore[arg-type]
    writer._fd = full
    blocker = writer._segment_path(writer._tail.segment + 1)
    blocker.mkdir()  # the next segment cannot be created either: the writer stays unhealthy
    names = committers(wal)

    async def during() -> None:
        with pytest.raises(AuditUnavailable):
            await writer.append({"type": "lost"})
        # appended once the audit writer has failed (appended before, its batch could still ride with the
        # failing one: on disk all the same, but committed by the audit writer's thread)
        seq, durable = wal.append(b"during")
        await durable  # the ledger's record is on disk all the same
        assert seq == 3

    asyncio.run(during())
    assert not writer.healthy and wal.carrier is None and wal.committed_seq == 3
    assert names == ["owstack-ledger-wal"]
    blocker.rmdir()
    deadline = time.monotonic() + 60
    while not writer.healthy and time.monotonic() < deadline:
        time.sleep(0.02)
    asyncio.run(ride(writer, wal, tasks=1, each=2))  # ridden again (committed by whichever thread is free)
    assert wal.committed_seq == 5 and wal.carrier is writer
    assert len(segments_payloads(wal)) == 5
    writer.close()
    wal.close()


class Busy:
    """A carrier that says it is busy carrying and never takes anything."""

    carrying = True
    busy = True

    def wake(self) -> None:
        pass

    def carry(self, rider: Any) -> None:
        rider.carry_with(self)


def test_a_batch_the_carrier_leaves_is_committed_by_the_log_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wal_module, "CARRIER_GRACE_S", 0.05)
    wal = Wal(tmp_path / "wal")
    wal.open()
    Busy().carry(wal)

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(wal.append(b"x")[1] for _ in range(3))), 60)

    asyncio.run(main())
    assert wal.committed_seq == 3
    wal.close()


class Idle(Busy):
    busy = False
    woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_a_batch_that_begins_while_the_carrier_is_idle_is_the_logs_own(tmp_path: Path) -> None:
    """A request alone: its ledger record's fsync runs on the log's thread, beside the audit record's."""
    wal = Wal(tmp_path / "wal")
    wal.open()
    carrier = Idle()
    carrier.carry(wal)
    names = committers(wal)

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(wal.append(b"x")[1] for _ in range(3))), 60)

    asyncio.run(main())
    assert wal.committed_seq == 3 and names == ["owstack-ledger-wal"] and carrier.woken == 0
    assert not wal.pending and wal.carry() is None
    wal.close()
