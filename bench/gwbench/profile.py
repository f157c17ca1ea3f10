"""Profile the gateway under load with py-spy (sampling, no change to the process), summarise the stacks.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;frame count" per line). The summary has
the frames that are on the CPU themselves (self) and the frames whose callees take the time (inclusive),
as percentages of all samples.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from gwbench import procs, wrk

REPO = Path(__file__).resolve().parents[2]


def py_spy() -> str | None:
    for local in (REPO / ".venv" / "bin" / "py-spy", Path(sys.executable).parent / "py-spy"):
        if local.exists():
            return str(local)
    return shutil.which("py-spy")


def summarise(collapsed: str, top: int = 25) -> dict[str, Any]:
    """Self time per frame and per file, and inclusive time of owstack's own frames, in % of samples.

    Under uvloop a coroutine's stack starts at the frame the C loop resumed, so inclusive time of the outer
    frames (typer, uvicorn's run) is not meaningful: only owstack's frames are given inclusively.
    """
    own: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        files[_file(frames[-1])] += count
        for frame in set(frames):
            if frame.split("(", 1)[-1].startswith("owstack/") and "owstack/cli/" not in frame:
                inclusive[frame] += count
    pct = (lambda n: round(100.0 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "self": [(frame, pct(n)) for frame, n in own.most_common(top)],
        "self_by_file": [(name, pct(n)) for name, n in files.most_common(top)],
        "inclusive": [(frame, pct(n)) for frame, n in inclusive.most_common(top)],
    }


def _file(frame: str) -> str:
    """'send (uvicorn/protocols/http/httptools_impl.py:524)' -> 'uvicorn/protocols/http/httptools_impl.py'."""
    inside = frame[frame.rfind("(") + 1 : frame.rfind(")")] if "(" in frame else frame
    return inside.rsplit(":", 1)[0] or frame


def _short(frame: str) -> str:
    """'handle (owstack/api/chat.py:42)' with the site-packages prefix cut."""
    for marker in ("site-packages/", "/src/", "lib/python3"):
        at = frame.find(marker)
        if at >= 0:
            head = frame[: frame.find("(") + 1] if "(" in frame else ""
            return head + frame[at + len(marker) :]
    return frame


def profile_run(
    pid: int,
    url: str,
    script: Path,
    connections: int,
    duration_s: float,
    out: Path,
    cores: set[int] | None,
    *,
    gil: bool = False,
) -> dict[str, Any]:
    """py-spy on `pid` (all its threads) while wrk loads it; returns the summary and the raw file's path.
    `gil`: only samples of the thread holding the GIL (where the CPU goes; waits for fsync, epoll and locks
    left out)."""
    exe = py_spy()
    if exe is None:
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    seconds = max(1, round(duration_s))
    cmd = [exe, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"]
    if gil:
        cmd.append("--gil")
    spy = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=procs.pinner(cores)
    )
    parsed, _ = wrk.run(url, script, connections=connections, duration_s=duration_s, preexec=procs.pinner(cores))
    _, err = spy.communicate(timeout=duration_s + 60)
    if spy.returncode != 0 or not out.exists():
        return {"error": f"py-spy failed ({spy.returncode}): {err.strip()[-300:]}"}
    summary = summarise(out.read_text(errors="replace"))
    summary["rps_while_profiled"] = parsed.rps
    summary["raw"] = str(out)
    return summary
