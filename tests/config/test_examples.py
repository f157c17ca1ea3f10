"""The three configurations in examples/ (laptop-only edge, one GPU node, EU multi-tenant with fallbacks)
and the starter written by `owstack init` pass `owstack config check` as shipped, and mean what their
comments say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owstack.cli import app
from owstack.config.load import load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()
#: the secrets the examples reference, as an operator would export them
SECRETS = {"NEMOTRON_KEY": "k1", "QWEN_KEY": "k2", "OPENAI_API_KEY": "sk-x", "OWSTACK_AUDIT_MASTER_KEY": "ab" * 32}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def test_there_are_three_commented_examples() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert files == ["eu-multi-tenant.yaml", "gpu-node.yaml", "laptop-edge.yaml"]
    for name in files:
        assert (EXAMPLES / name).read_text().startswith("# "), name


@pytest.mark.parametrize("name", ["eu-multi-tenant.yaml", "gpu-node.yaml", "laptop-edge.yaml"])
def test_each_example_passes_config_check(name: str) -> None:
    result = runner.invoke(app, ["config", "check", str(EXAMPLES / name)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {EXAMPLES / name}")


def test_an_example_missing_its_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    result = runner.invoke(app, ["config", "check", str(EXAMPLES / "eu-multi-tenant.yaml")])
    assert result.exit_code == 2 and "backends.openai.api_key: environment variable OPENAI_API_KEY" in result.output


def test_the_laptop_example_stays_on_the_machine() -> None:
    file = load(EXAMPLES / "laptop-edge.yaml").file
    assert file.server.host == "127.0.0.1" and not file.tenants
    assert {b.jurisdiction for b in file.backends.values()} == {"local"}
    assert all("edge-local" in spec.fallback for spec in file.layers.values())


def test_the_eu_example_keeps_acme_in_the_eu_and_lets_globex_fall_back() -> None:
    result = runner.invoke(app, ["residency", "check", "--config", str(EXAMPLES / "eu-multi-tenant.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    tenants = json.loads(result.output)["tenants"]
    acme, globex = tenants["acme-eu"]["layers"], tenants["globex"]["layers"]
    assert acme["coding"]["fallback"] == ["edge-local"]  # never the US region nor the paid API
    assert set(acme["coding"]["excluded"]) == {"nemotron-us", "openai"}
    assert globex["coding"]["fallback"] == ["nemotron-us", "openai", "edge-local"]


def test_init_writes_the_starter_and_it_passes(tmp_path: Path) -> None:
    path = tmp_path / "owstack.yaml"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    text = path.read_text()
    assert text.count("\n#") > 10  # commented
    check = runner.invoke(app, ["config", "check", str(path)])
    assert check.exit_code == 0, check.output
    file = load(path).file
    assert set(file.layers) == {"coding", "multimodal", "edge"} and file.tenants and file.counterfactual
    assert {b.catalog or b.model for b in file.backends.values()} == {
        "nemotron-3-super",
        "mistral-small-4",
        "smollm2-135m-instruct",
    }
    assert file.storage.url == f"sqlite:///{tmp_path}/owstack.db"  # next to the config, from anywhere
    assert runner.invoke(app, ["init", str(path)]).exit_code == 2
    assert runner.invoke(app, ["init", str(path), "--force"]).exit_code == 0


def test_the_readme_stack_passes_config_check(tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("## Your own stack") :]
    block = section[section.index("```yaml\n") + 8 : section.index("\n```", section.index("```yaml\n"))]
    path = tmp_path / "owstack.yaml"
    path.write_text(block)
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 backend(s), 1 tenant(s)" in result.output
