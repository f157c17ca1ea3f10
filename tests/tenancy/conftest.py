"""Fixtures for the tenancy tests: key stores on SQLite (a temp file) and on the real PostgreSQL (a
database of its own per test, dropped afterwards), config files, and the CLI app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import scratch_db

CONFIG: dict[str, Any] = {
    "backends": {
        "edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "jurisdiction": "local"},
        "vllm-eu-fr": {
            "engine": "vllm",
            "url": "http://10.0.0.1:8000/v1",
            "model": "m",
            "jurisdiction": "eu-fr",
        },
        "vllm-eu-de": {
            "engine": "vllm",
            "url": "http://10.0.0.2:8000/v1",
            "model": "m",
            "jurisdiction": "eu-de",
        },
        "vllm-us": {"engine": "vllm", "url": "http://10.0.0.3:8000/v1", "model": "m", "jurisdiction": "us"},
        "openai-us": {
            "engine": "openai",
            "url": "https://api.example.invalid/v1",
            "model": "gpt-5.4",
            "api_key": "env.OPENAI_API_KEY",
            "jurisdiction": "us",
            "proprietary": True,
        },
    },
    "layers": {
        "coding": {"backends": ["vllm-eu-fr", "vllm-us"], "fallback": ["openai-us", "edge-local"]},
        "multimodal": {"backends": ["vllm-eu-de"], "fallback": ["openai-us"]},
        "edge": {"backends": ["edge-local"]},
    },
    "tenants": {
        "acme-eu": {"jurisdictions": ["eu", "local"], "reasoning": "concise", "budget_usd_month": 500},
        "fr-only": {"jurisdictions": ["eu-fr"], "layers": ["coding"]},
        "us-prop": {"jurisdictions": ["us"], "allow_proprietary": True},
    },
}


def pg_create() -> str:
    return scratch_db.create()


def pg_drop(url: str) -> None:
    scratch_db.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    from owstack.storage import dispose

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    yield url
    dispose(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using it runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    from owstack.storage import dispose

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'keys.db'}"
        yield url
        dispose(url)
    else:
        url = pg_create()
        try:
            yield url
        finally:
            pg_drop(url)


@pytest.fixture
def config_data() -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(CONFIG))  # a deep copy


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config dict (plus a storage URL, and the audit log in tmp_path) to a YAML file."""

    def write(data: dict[str, Any], storage_url: str | None = None, name: str = "owstack.yaml") -> Path:
        data = dict(data)
        if storage_url is not None:
            data["storage"] = {"url": storage_url}
        # the audit log (on by default) writes here, not into the working directory
        data.setdefault("audit", {"directory": str(tmp_path / "audit"), "keys_directory": str(tmp_path / "keys")})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli_app() -> Any:
    """The root `owstack` Typer app."""
    from owstack.cli import app

    return app
