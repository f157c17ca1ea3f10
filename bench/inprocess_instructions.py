"""Instructions per request of the gateway's ASGI app, counted by valgrind: a figure a busy host does not move.

    PYTHONPATH=src .venv/bin/python bench/inprocess_instructions.py owstack owstack+full
        [--durable real|none|thread|thread-build] [--no-wal] [--small 400] [--large 2000] [--keep DIR]

Each variant runs `bench/inprocess_cpu.py` (the in-process driver: the bench's chat request against the
nginx upstream, 16 concurrent tasks) twice under `valgrind --tool=callgrind`, once with `--small` and once
with `--large` requests, both at once; the difference of the two runs' instruction totals over the
difference of their request counts is the user-space instructions one request costs, start-up and
warm-up cancelled out. Repeated runs agree to a fraction of a percent whatever else the machine does
(CPU-time figures moved by tens of percent between runs on the shared VMs, docs/benchmarks.md), so a change
to the hot path can be judged by this number on any host, in a few minutes.

What it does not count: time in the kernel (syscalls, fsync), waiting, and cache behaviour; and valgrind
hides the CPU's SHA extensions, so OpenSSL hashes in software under it (a record's chain hash costs
several times the instructions it costs natively). Use it for differences in Python work, and
`gateway_bench.py` for the performance bars.

`--keep DIR` keeps callgrind's files there (`VARIANT-400.out`, `VARIANT-2000.out`): `callgrind_annotate
--inclusive=yes` on each, and the difference of a function's count between the two over the difference of
their request counts, says where a request's instructions go.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gwbench import contenders  # noqa: E402

ROUND = re.compile(r"round 1: (\d+) requests")


def run(variant: str, requests: int, extra: list[str], out: Path) -> subprocess.Popen[str]:
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
    cmd += [str(HERE / "inprocess_cpu.py"), variant, "--child", "--requests", str(requests), "--rounds", "1", *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=contenders.owstack_env()
    )


def parse(output: str, callgrind: str, returncode: int) -> tuple[int, int]:
    """(instructions, requests served) of one finished run, from the driver's output and callgrind's file."""
    served = ROUND.search(output)
    total = re.search(r"^(?:summary|totals): (\d+)", callgrind, re.MULTILINE)
    if returncode != 0 or served is None or total is None:
        raise SystemExit(f"the run under valgrind failed (exit {returncode}):\n{output[-2000:]}")
    return int(total.group(1)), int(served.group(1))


def counted(proc: subprocess.Popen[str], out: Path) -> tuple[int, int]:
    text, _ = proc.communicate()
    return parse(text, out.read_text() if out.exists() else "", proc.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="gwbench/contenders.py variants (owstack, owstack+full, ...)")
    parser.add_argument("--durable", choices=("real", "none", "thread", "thread-build"), default="real")
    parser.add_argument("--no-wal", action="store_true")
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="keep callgrind's output files in this directory")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    extra = ["--durable", args.durable, *(["--no-wal"] if args.no_wal else [])]
    with tempfile.TemporaryDirectory(prefix="owstack-callgrind-") as tmp:
        for variant in args.variants:
            where = args.keep or Path(tmp)
            where.mkdir(parents=True, exist_ok=True)
            outs = [where / f"{variant}-{n}.out" for n in (args.small, args.large)]
            procs = [run(variant, n, extra, out) for n, out in zip((args.small, args.large), outs, strict=True)]
            (i_small, r_small), (i_large, r_large) = (counted(p, o) for p, o in zip(procs, outs, strict=True))
            per = (i_large - i_small) / max(r_large - r_small, 1)
            print(
                f"{variant} (durable={args.durable}, wal={'off' if args.no_wal else 'on'}): {per:,.0f} instructions "
                f"per request ({r_small} and {r_large} requests)",
                flush=True,
            )


if __name__ == "__main__":
    main()
