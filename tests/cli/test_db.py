"""`owstack db migrate`: the schema revisions a database lacks, applied one at a time with progress."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from owstack.cli import app
from owstack.storage.migrator import current_revisions, head_revisions, migrate, pending_revisions

runner = CliRunner()


def config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "owstack.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": url}}))
    return str(path)


def test_each_revision_is_reported_as_it_is_applied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    pending = pending_revisions(url)
    assert pending[0] == "0001_ledger" and pending[-1] in head_revisions()
    steps: list[str] = []
    migrate(url, on_step=steps.append)
    assert tuple(steps) == pending and current_revisions(url) == head_revisions()
    assert pending_revisions(url) == ()


def test_the_command_migrates_once_then_has_nothing_to_do(tmp_path: Path) -> None:
    path = config(tmp_path, "sqlite:///state.db")  # relative: next to the config file
    first = runner.invoke(app, ["db", "migrate", "--config", path])
    assert first.exit_code == 0, first.output
    assert f"sqlite:///{tmp_path}/state.db: applied " in first.output and "0001_ledger" in first.output
    assert (tmp_path / "state.db").is_file()
    again = runner.invoke(app, ["db", "migrate", "--config", path])
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_an_unreachable_database_is_exit_1_and_a_bad_url_exit_2(tmp_path: Path) -> None:
    down = runner.invoke(app, ["db", "migrate", "--config", config(tmp_path, "postgresql://nobody@127.0.0.1:9/x")])
    assert down.exit_code == 1 and "cannot migrate the database at postgresql://nobody@127.0.0.1:9/x" in down.output
    bad = runner.invoke(app, ["db", "migrate", "--config", config(tmp_path, "mysql://h/db")])
    assert bad.exit_code == 2 and "storage.url: unsupported database" in bad.output
