"""The config file: strict schema, references checked, secrets as env references, a redacted view."""

from __future__ import annotations

from pathlib import Path

import pytest

from owstack.config.load import EMBEDDED_BACKEND, from_dict, load
from owstack.errors import ConfigError


def test_no_file_is_the_embedded_default(tmp_path: Path) -> None:
    config = load(None)  # tests/conftest.py points OWSTACK_DATA_DIR at tmp_path
    assert config.embedded_default
    assert list(config.file.backends) == [EMBEDDED_BACKEND]
    assert config.file.backends[EMBEDDED_BACKEND].engine == "llamacpp"
    assert {layer: spec.backends for layer, spec in config.file.layers.items()} == {
        "coding": (EMBEDDED_BACKEND,),
        "multimodal": (EMBEDDED_BACKEND,),
        "edge": (EMBEDDED_BACKEND,),
    }
    assert config.file.server.host == "127.0.0.1"
    assert config.file.storage.url == f"sqlite:///{tmp_path}/owstack.db"


def test_backends_without_layers_serve_every_layer() -> None:
    config = from_dict({"backends": {"a": {"engine": "vllm", "url": "http://x/v1", "model": "m"}}})
    assert all(spec.backends == ("a",) for spec in config.file.layers.values())


def test_missing_layers_copy_the_first_configured_one() -> None:
    config = from_dict(
        {
            "backends": {"a": {"engine": "vllm", "url": "http://x/v1", "model": "m"}},
            "layers": {"coding": {"backends": ["a"]}},
        }
    )
    assert config.file.layers["edge"].backends == ("a",)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"backends": {"a": {"engine": "vllm", "model": "m"}}}, "backends.a: Value error, engine 'vllm' needs a `url`"),
        ({"backends": {"a": {"engine": "nope", "url": "http://x", "model": "m"}}}, "backends.a.engine"),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"server": {"port": 70000}}, "server.port"),
        (
            {"backends": {"a": {"engine": "openai", "url": "http://x", "model": "m", "api_key": "sk-123"}}},
            "never the key itself",
        ),
        (
            {"backends": {"a": {"engine": "vllm", "url": "http://x", "model": "m", "jurisdiction": "EU!"}}},
            "backends.a.jurisdiction",
        ),
        (
            {
                "backends": {"a": {"engine": "vllm", "url": "http://x", "model": "m"}},
                "layers": {"coding": {"backends": ["b"]}},
            },
            "layers.coding.backends: unknown backend 'b'",
        ),
        (
            {
                "backends": {"a": {"engine": "vllm", "url": "http://x", "model": "m"}},
                "layers": {"vision": {"backends": ["a"]}},
            },
            "layers.vision: unknown layer",
        ),
        ({"routing": {"auto": {"images": "gpu"}}}, "routing.auto.images"),
        ({"routing": {"auto": {"code_patterns": ["(unclosed"]}}}, "routing.auto.code_patterns"),
        ({"backends": {"a": {"engine": "llamacpp", "model": "m", "url": "http://x"}}}, "takes no `url`"),
    ],
)
def test_bad_configs_name_the_field(raw: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(raw)
    assert fragment.replace("Value error, ", "") in str(info.value), str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(bad)


def test_secrets_resolve_from_env_and_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    config = from_dict(
        {
            "storage": {"url": "postgresql://owstack:hunter2@db:5432/owstack"},
            "backends": {
                "oa": {
                    "engine": "openai",
                    "url": "https://api.openai.com/v1",
                    "model": "gpt-5.4",
                    "api_key": "env.OA_KEY",
                }
            },
        }
    )
    with pytest.raises(ConfigError, match="OA_KEY is not set"):
        config.secret("env.OA_KEY", field="backends.oa.api_key")
    monkeypatch.setenv("OA_KEY", "sk-live-secret")
    assert config.secret("env.OA_KEY", field="x") == "sk-live-secret"
    redacted = str(config.redacted())
    assert "hunter2" not in redacted and "OA_KEY" not in redacted and "sk-live" not in redacted
    assert "postgresql://owstack:***@db:5432/owstack" in redacted


def test_config_is_immutable() -> None:
    config = load(None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        config.file.server.port = 1  # type: ignore[misc]
