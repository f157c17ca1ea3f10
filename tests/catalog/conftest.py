"""Fixtures of the catalog tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .llama_server import LlamaServer, llama_server


@pytest.fixture(scope="module")
def smollm2_server() -> Iterator[LlamaServer]:
    """The SmolLM2 recipe's `python -m llama_cpp.server` on a free loopback port (see llama_server.py)."""
    with llama_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_user_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see the shipped catalog unless they set an override file themselves."""
    monkeypatch.delenv("OWSTACK_MODELS_FILE", raising=False)
    monkeypatch.delenv("OWSTACK_RECIPES_FILE", raising=False)
