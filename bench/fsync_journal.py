"""What one audit commit costs on the disk: the segment fsynced itself, or made durable through the journal.

    .venv/bin/python bench/fsync_journal.py [--dir DIR] [--batches 2000] [--batch-bytes 22000] [--runs 3]

The audit writer appends each batch to the live segment. Before compliance/journal.py it then fsynced the
segment, a file that grows, so every fdatasync also committed the file system's journal for the new size.
Now it writes the batch into the stream's preallocated journal as well and fsyncs that (the segment goes to
disk with the kernel's writeback, and is fsynced when a journal lap ends: once per 2 MiB). Both layouts run
through the same code the writer runs (`journal.Journal` for the second); the run ends with an fsync of the
segment, so the writeback the second layout defers is counted too. Printed per batch: median and mean wall
time, this process's kernel CPU, and the CPU time of the whole machine (`/proc/stat`, both cores: the file
system's journal thread and the writeback run outside the process). DIR must be on the file system the
audit log lives on (default: the current directory). A batch of 22 KB is ~14 records of ~1.6 KB, what the
bar's chat@16 load commits at once (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from owstack.compliance.journal import Journal


def _machine_busy_s() -> float:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def one(directory: Path, batches: int, size: int, through_journal: bool) -> tuple[float, float, float, float]:
    """(median wall µs, mean wall µs, kernel CPU µs, machine CPU µs) per batch."""
    for name in ("seg.jsonl", "journal"):
        (directory / name).unlink(missing_ok=True)
    seg = os.open(directory / "seg.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    log = Journal(directory, "bench") if through_journal else None
    data = (b"x" * (size - 1)) + b"\n"
    walls = []
    end = 0
    before, machine, start = resource.getrusage(resource.RUSAGE_SELF), _machine_busy_s(), time.perf_counter()
    for n in range(batches):
        t = time.perf_counter()
        os.write(seg, data)
        end += len(data)
        if log is None:
            os.fdatasync(seg)
        else:
            log.commit(data, seg, 1, end, n + 1, "0" * 64)
        walls.append(time.perf_counter() - t)
    os.fsync(seg)
    after, machine, stop = resource.getrusage(resource.RUSAGE_SELF), _machine_busy_s() - machine, time.perf_counter()
    os.close(seg)
    if log is not None:
        log.close()
    return (
        statistics.median(walls) * 1e6,
        (stop - start) / batches * 1e6,
        (after.ru_stime - before.ru_stime) / batches * 1e6,
        machine / batches * 1e6,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch-bytes", type=int, default=22_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="owstack-fsync-", dir=args.dir) as tmp:
        for run in range(1, args.runs + 1):
            for label, through in (("segment fsynced", False), ("through the journal", True)):
                median, mean, kernel, machine = one(Path(tmp), args.batches, args.batch_bytes, through)
                print(
                    f"run {run}, {label}: {median:,.0f} µs median / {mean:,.0f} µs mean wall, "
                    f"{kernel:,.0f} µs kernel CPU, {machine:,.0f} µs machine CPU per batch",
                    flush=True,
                )


if __name__ == "__main__":
    main()
