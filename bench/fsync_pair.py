"""Two durable logs per batch, as the gateway's audit writer commits them (issue 14): their two fdatasyncs one
after the other, side by side (the second on a helper thread, as `storage.threads.Beside` does), and one log
holding both.

    python3 bench/fsync_pair.py [--dir DIR] [--batches N] [--rounds R]

File A grows like an audit segment (7,000 bytes appended per batch); file B is zero-filled beforehand and
overwritten like the ledger's write-ahead log (3,000 bytes per batch). Prints, per way and round, the median
and mean wall time of a batch and the kernel CPU per batch. DIR must be on the disk to measure (default: the
current directory). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

AUDIT_BATCH = b"x" * 7000
WAL_BATCH = b"y" * 3000
WAL_SIZE = 64 << 20


def open_pair(directory: Path) -> tuple[int, int]:
    a, b = directory / "fsync_pair_a.jsonl", directory / "fsync_pair_b.wal"
    for path in (a, b):
        path.unlink(missing_ok=True)
    fa = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    fb = os.open(b, os.O_RDWR | os.O_CREAT, 0o600)
    os.pwrite(fb, bytes(WAL_SIZE), 0)
    os.fsync(fb)
    return fa, fb


def one_after_the_other(fa: int, fb: int, batches: int) -> list[float]:
    times = []
    for i in range(batches):
        start = time.perf_counter()
        os.pwrite(fb, WAL_BATCH, i * len(WAL_BATCH))
        os.write(fa, AUDIT_BATCH)
        os.fdatasync(fa)
        os.fdatasync(fb)
        times.append(time.perf_counter() - start)
    return times


def side_by_side(fa: int, fb: int, batches: int) -> list[float]:
    go, done = threading.Semaphore(0), threading.Semaphore(0)
    stop = False

    def helper() -> None:
        while True:
            go.acquire()
            if stop:
                return
            os.fdatasync(fb)
            done.release()

    thread = threading.Thread(target=helper)
    thread.start()
    times = []
    for i in range(batches):
        start = time.perf_counter()
        os.pwrite(fb, WAL_BATCH, i * len(WAL_BATCH))
        os.write(fa, AUDIT_BATCH)
        go.release()
        os.fdatasync(fa)
        done.acquire()
        times.append(time.perf_counter() - start)
    stop = True
    go.release()
    thread.join()
    return times


def one_log(fa: int, fb: int, batches: int) -> list[float]:
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        os.write(fa, AUDIT_BATCH + WAL_BATCH)
        os.fdatasync(fa)
        times.append(time.perf_counter() - start)
    return times


WAYS: dict[str, Callable[[int, int, int], list[float]]] = {
    "one after the other": one_after_the_other,
    "side by side": side_by_side,
    "one log": one_log,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("."))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for name, way in WAYS.items():
            fa, fb = open_pair(args.dir)
            before = os.times()
            times = way(fa, fb, args.batches)
            kernel = (os.times().system - before.system) / args.batches
            os.close(fa)
            os.close(fb)
            median, mean = statistics.median(times) * 1e6, statistics.mean(times) * 1e6
            print(f"{name:20s} median {median:6.0f} µs  mean {mean:6.0f} µs  kernel CPU {kernel * 1e6:5.0f} µs/batch")
    for name in ("fsync_pair_a.jsonl", "fsync_pair_b.wal"):
        (args.dir / name).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
