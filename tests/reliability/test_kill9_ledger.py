"""kill -9 under load loses no record of an answered request (issue 14, item 3): the gateway, then its ledger
process, killed with SIGKILL while 16 connections keep it busy, on SQLite and PostgreSQL. Every request id
that got a complete 200 must be in the ledger once the next gateway has started (and replayed the
write-ahead log the dead one left) and stopped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from procs import Proc, run_gateway
from reliability.conftest import ledger_ids
from reliability.load import Load


def config(tmp: Path, upstream: Proc, url: str) -> dict[str, Any]:
    return {
        "storage": {"url": url},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
        "backends": {"up": {"engine": "vllm", "url": upstream.base_url, "model": "edge-model"}},
        "layers": {"edge": {"backends": ["up"]}},
    }


def ledger_process(gateway_pid: int, timeout_s: float = 30.0) -> int:
    """The gateway's ledger process: a process whose parent is the gateway and whose command line names the
    module. Looked for in all of /proc (a thread's `children` list is not reliable while it changes) until it
    is found: the gateway spawns it on its first write, and again after it dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
                status = (entry / "status").read_text()
            except OSError:  # exited while listed
                continue
            if "owstack.metering.ledger_process" in cmdline and f"\nPPid:\t{gateway_pid}\n" in status:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError("no ledger process")


@pytest.mark.parametrize("victim", ["gateway", "ledger process"])
def test_kill_9_under_load_loses_no_answered_request(
    ledger_url: str, victim: str, fake_upstream: Proc, tmp_path: Path
) -> None:
    """Two rounds: the second gateway replays what the first left while it serves (and appends to its own
    log), and is killed in turn."""
    cfg = config(tmp_path, fake_upstream, ledger_url)
    answered: set[str] = set()
    outcomes = 0
    for round_ in range(2):
        with run_gateway(tmp_path, cfg) as gw:
            with Load(gw.base_url, concurrency=16, prefix=f"k9{victim[0]}{round_}") as load:
                assert load.wait_for(300)
                if victim == "gateway":
                    os.kill(gw.proc.pid, signal.SIGKILL)
                    gw.proc.wait(30)
                else:
                    os.kill(ledger_process(gw.proc.pid), signal.SIGKILL)  # the gateway starts another
                    assert load.wait_for(len(load.acknowledged) + 300)
            answered |= set(load.acknowledged)
            outcomes += load.outcomes["200"]
    with run_gateway(tmp_path, cfg):  # the next start replays what the dead gateway's log held
        pass  # stopped gracefully: its writer flushes into the database
    recorded = ledger_ids(ledger_url)
    lost = answered - recorded
    assert len(answered) >= 600 and not lost, f"{len(lost)} of {len(answered)} answered requests lost"
    assert outcomes == len(answered)
