"""Real clients against a real `owstack serve` whose one backend is the scripted upstream (`engine: vllm`).

    scripted        a session-wide tests/fakes/scripted.py server following scripted_world.SCRIPT
    gateway         a session-wide gateway whose only backend is `scripted`, so it serves every layer

The behaviour and the constants the tests assert on are in scripted_world.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from scripted_world import SCRIPT, scripted_backend

from procs import ROOT, Proc, free_port, run_gateway, spawn, wait_http


@pytest.fixture(scope="session")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("scripted")
    script = tmp / "script.json"
    script.write_text(json.dumps({"rules": SCRIPT}))
    port = free_port()
    log = tmp / f"scripted-{port}.log"
    proc = spawn([sys.executable, str(ROOT / "tests" / "fakes" / "scripted.py"), str(port), str(script)], log)
    p = Proc(proc, port, log)
    try:
        wait_http(p.url + "/health", proc, log, timeout=60)
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def gateway(scripted: Proc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    # the access log lets a test see every status the gateway answered, including a 4xx a client recovered from
    config = {"backends": {"scripted": scripted_backend(scripted)}, "server": {"access_log": True}}
    with run_gateway(tmp_path_factory.mktemp("clients-gateway"), config) as gw:
        yield gw
