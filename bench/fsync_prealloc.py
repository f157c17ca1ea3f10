"""What an fdatasync costs when the file grows with every write, and when it is written in place into zeros.

    .venv/bin/python bench/fsync_prealloc.py [--dir DIR] [--batches 2000] [--runs 3]

The pattern of the gateway's two durable logs under load: per batch, about 3 KB appended to the ledger's
write-ahead log and 20 KB to the audit segment, then `fdatasync` of each (the audit writer's commit thread
carries the WAL's batch, storage/durable.py). Three layouts: both files growing (O_APPEND), the WAL
preallocated (zero-filled, written in place with `pwrite`, as `metering/wal.py` does), and both
preallocated. Printed per batch: wall time and kernel CPU (`getrusage`). A file that grows makes the file
system (ext4) commit its journal for the new size and blocks at every fsync; one written into zeros it
already holds does not. DIR must be on the file system the logs live on (default: the current directory).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

AUDIT_BYTES, WAL_BYTES = 20_000, 3_000


def one(directory: Path, batches: int, prealloc_wal: bool, prealloc_audit: bool) -> tuple[float, float]:
    """(wall µs, kernel CPU µs) per batch."""
    fds = []
    for name, prealloc, size in (("audit", prealloc_audit, AUDIT_BYTES), ("wal", prealloc_wal, WAL_BYTES)):
        path = directory / f"{name}.bin"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if prealloc else os.O_APPEND), 0o600)
        if prealloc:
            os.pwrite(fd, bytes(size * batches), 0)
            os.fsync(fd)
        fds.append((fd, prealloc, b"x" * size))
    offsets = [0, 0]
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(batches):
        for i in (1, 0):  # the WAL's records are written first, then the audit batch
            fd, prealloc, data = fds[i]
            if prealloc:
                os.pwrite(fd, data, offsets[i])
                offsets[i] += len(data)
            else:
                os.write(fd, data)
        os.fdatasync(fds[0][0])
        os.fdatasync(fds[1][0])
    after, end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for fd, _, _ in fds:
        os.close(fd)
    return (end - start) / batches * 1e6, (after.ru_stime - before.ru_stime) / batches * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path.cwd())
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    layouts = (("both growing", False, False), ("WAL preallocated", True, False), ("both preallocated", True, True))
    with tempfile.TemporaryDirectory(prefix="owstack-fsync-", dir=args.dir) as tmp:
        for run in range(1, args.runs + 1):
            for label, wal, audit in layouts:
                wall, kernel = one(Path(tmp), args.batches, wal, audit)
                print(f"run {run}, {label}: {wall:,.0f} µs wall, {kernel:,.0f} µs kernel CPU per batch", flush=True)


if __name__ == "__main__":
    main()
