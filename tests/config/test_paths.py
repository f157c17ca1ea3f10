"""Relative paths in a config resolve against the config file's folder, never the working directory; with
no config file, against the data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from owstack.config.load import from_dict, load
from owstack.config.paths import data_dir, resolve_database_url


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_relative_paths_resolve_against_the_config_folder_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "site" / "owstack.yaml",
        {
            "storage": {"url": "sqlite:///state/ledger.db?timeout=5"},
            "audit": {"directory": "audit", "keys_directory": "../secrets", "master_key": "env.MASTER"},
            "backends": {"e": {"engine": "llamacpp", "model": "mine", "model_path": "models/m.gguf"}},
        },
    )
    seen = []
    for cwd in (tmp_path, tmp_path / "site", Path("/")):
        monkeypatch.chdir(cwd)
        file = load(os.path.relpath(config, cwd)).file
        seen.append((file.storage.url, file.audit.directory, file.audit.keys_directory, file.audit.master_key))
        assert file.backends["e"].model_path == str(tmp_path / "site" / "models" / "m.gguf")
    site = tmp_path / "site"
    expected = (f"sqlite:///{site}/state/ledger.db?timeout=5", str(site / "audit"), str(site / "../secrets"))
    assert seen == [(*expected, "env.MASTER")] * 3


def test_absolute_paths_and_server_urls_are_kept(tmp_path: Path) -> None:
    config = write(
        tmp_path / "c.yaml",
        {"storage": {"url": "postgresql://u:p@db/owstack"}, "audit": {"directory": "/var/lib/owstack/audit"}},
    )
    file = load(config).file
    assert file.storage.url == "postgresql://u:p@db/owstack"
    assert file.audit.directory == "/var/lib/owstack/audit"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///owstack.db", "sqlite:////base/owstack.db"),
        ("sqlite+pysqlite:///a/b.db", "sqlite+pysqlite:////base/a/b.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_database_urls(url: str, expected: str) -> None:
    assert resolve_database_url(url, Path("/base")) == expected


def test_without_a_config_file_everything_lives_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "data"
    monkeypatch.setenv("OWSTACK_DATA_DIR", str(home))
    monkeypatch.chdir(tmp_path)
    config = load(None)
    assert home.is_dir() and config.base == home
    assert config.file.storage.url == f"sqlite:///{home}/owstack.db"
    assert config.file.audit.directory == str(home / "owstack-audit")
    assert config.file.audit.keys_directory == str(home / "owstack-keys")


def test_the_data_directory_follows_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OWSTACK_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "owstack"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / ".local" / "share" / "owstack"


def test_a_dict_without_a_base_is_left_as_written() -> None:
    assert from_dict({"storage": {"url": "sqlite:///x.db"}}).file.storage.url == "sqlite:///x.db"
