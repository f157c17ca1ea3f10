"""kill -9 under load: no acknowledged record is lost, and verify reads the end as a crash, not tampering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from owstack.compliance import chain
from owstack.compliance.config import AuditSection
from owstack.compliance.verify import verify
from owstack.compliance.writer import AuditWriter

from .conftest import read_lines

SCRIPT = Path(__file__).with_name("appender.py")


def run_and_kill(tmp: Path, acks: int = 400) -> dict[int, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(tmp / "audit"), str(tmp / "keys")], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    acked: dict[int, str] = {}
    try:
        while len(acked) < acks:
            line = proc.stdout.readline()
            assert line, "the appender died before it was killed"
            seq, digest = line.decode().split()
            acked[int(seq)] = digest
        os.kill(proc.pid, signal.SIGKILL)  # under load: tasks are mid-append right now
        for line in proc.stdout:  # acknowledgements already printed before the kill
            parts = line.decode().split()
            if len(parts) == 2:
                acked[int(parts[0])] = parts[1]
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    return acked


def on_disk(tmp: Path) -> dict[int, str]:
    out = {}
    for seg in sorted((tmp / "audit" / "streams" / "crash-0").glob("seg-*.jsonl")):
        lines = seg.read_bytes().split(b"\n")
        for raw in lines:
            if raw.endswith(b"}"):
                import orjson

                r = orjson.loads(raw)
                out[r["seq"]] = r["entry_hash"]
    return out


def test_kill9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    acked = run_and_kill(tmp_path)
    disk = on_disk(tmp_path)
    missing = [s for s, h in acked.items() if disk.get(s) != h]
    assert not missing, f"acknowledged but not on disk: {missing[:10]}"
    report = verify(tmp_path / "audit")
    assert report.ok, [d.line() for d in report.damage]
    stream = report.streams[0]
    assert stream.state == "crashed" and "crash" in stream.warnings[0]
    assert stream.last_seq is not None and stream.last_seq >= max(acked)

    # the next run continues the chain and says where the previous one ended
    section = AuditSection(directory=str(tmp_path / "audit"), keys_directory=str(tmp_path / "keys"), node="crash")
    writer = AuditWriter(section).start()
    writer.append_sync({"type": "test.after"})
    writer.close()
    records = [r for seg in sorted((tmp_path / "audit/streams/crash-0").glob("seg-*")) for r in read_lines(seg)]
    resumed = [r for r in records if r["type"] == chain.STREAM_RESUMED]
    assert resumed and resumed[0]["previous"] == {
        "seq": stream.last_seq,
        "entry_hash": stream.last_hash,
        "sealed": False,
    }
    after = verify(tmp_path / "audit")
    assert after.ok and after.streams[0].state == "sealed"


def test_a_torn_write_at_the_end_is_a_crash_and_the_next_run_accounts_for_it(tmp_path: Path) -> None:
    acked = run_and_kill(tmp_path, acks=100)
    seg = sorted((tmp_path / "audit/streams/crash-0").glob("seg-*.jsonl"))[-1]
    with seg.open("ab") as fh:  # what a power loss in the middle of a write can leave
        fh.write(b'{"entry_hash":"00ab","seq":')
    report = verify(tmp_path / "audit")
    assert report.ok and report.streams[0].torn is not None
    assert "torn" in report.streams[0].warnings[0]
    disk = on_disk(tmp_path)
    assert all(disk.get(s) == h for s, h in acked.items())

    section = AuditSection(directory=str(tmp_path / "audit"), keys_directory=str(tmp_path / "keys"), node="crash")
    AuditWriter(section).start().close()
    segments = sorted((tmp_path / "audit/streams/crash-0").glob("seg-*.jsonl"))
    assert segments[-1] != seg  # a fresh segment after the torn one
    first = read_lines(segments[-1])[0]
    assert first["type"] == chain.STREAM_RESUMED and first["torn"]["segment"] == int(seg.stem.split("-")[1])
    assert verify(tmp_path / "audit").ok

    # a torn record that no resume record accounts for is damage
    with seg.open("ab") as fh:
        fh.write(b"x")
    assert verify(tmp_path / "audit").damage[0].kind == "corrupt"
