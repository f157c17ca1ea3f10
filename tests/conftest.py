"""Shared fixtures: real processes for the gateway and for a fake OpenAI-compatible upstream.

    fake_upstream                      a session-wide `tests/fakes/upstream.py` server (behaviour by model name)
    start_gateway(config_dict, ...)    a context manager running `owstack serve` on a free port
    embedded_gateway                   a session-wide gateway on the embedded default (no config)
    (autouse) OWSTACK_DATA_DIR         each test's tmp_path, so that commands run without a config file
                                       never write into the user's data directory

The process helpers themselves live in tests/procs.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from procs import Proc, run_gateway, run_upstream

# Property tests draw the same examples at every run and keep no example database: CI stays deterministic.
# A test may widen its own search on request (tests/protocols/test_fuzz_bodies.py: OWSTACK_FUZZ_EXAMPLES).
# No deadline per example and no "too slow" health check: on a busy CI machine an example may take seconds, and
# a property must fail on its property, never on the machine's load (speed is measured in bench/).
settings.register_profile(
    "owstack", derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("owstack")


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with run_upstream(tmp_path_factory.mktemp("upstream")) as p:
        yield p


@pytest.fixture(scope="session")
def embedded_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    with run_gateway(tmp_path_factory.mktemp("embedded")) as p:
        yield p


@pytest.fixture
def start_gateway(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[Proc]]:
    """`with start_gateway(config) as gw:` runs a gateway for the duration of the block."""

    def start(config: dict[str, Any] | None = None, **kwargs: Any) -> contextlib.AbstractContextManager[Proc]:
        return run_gateway(tmp_path, config, **kwargs)

    return start


@pytest.fixture(autouse=True)
def _data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWSTACK_DATA_DIR", str(tmp_path))
