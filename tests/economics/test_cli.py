"""`owstack plan`: flags, scenario files, config overrides, JSON, errors (CliRunner and a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owstack.cli import app

runner = CliRunner()
FAST = ["--compare", "H100"]  # one option keeps the runs short


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_has_the_headline_fields() -> None:
    d = _json("--tokens-per-day", "100M", "--input-share", "0.75", "--api", "gpt-5.4", *FAST)
    # 75M x 2.50/M + 25M x 15/M = $562.50
    assert d["api_cost_per_day"] == pytest.approx(562.5)
    for key in (
        "selfhost_cost_per_day",
        "breakeven_tokens_per_day",
        "payback_months",
        "gpus",
        "nodes",
        "sensitivity",
        "options",
        "selfhost_breakdown_per_day",
    ):
        assert key in d
    assert d["selfhost_cost_per_day"] == pytest.approx(sum(d["selfhost_breakdown_per_day"].values()))


@pytest.mark.parametrize(("text", "expected"), [("1.5B", 1.5e9), ("250k", 2.5e5), ("1e8", 1e8)])
def test_token_volumes_parse(text: str, expected: float) -> None:
    d = _json("--tokens-per-day", text, *FAST)
    assert d["tokens"]["tokens_per_day"] == pytest.approx(expected)


def test_flags_reach_the_plan() -> None:
    d = _json(
        "--tokens-per-day",
        "100M",
        "--input-share",
        "0.5",
        "--batch",
        "--hardware",
        "H100",
        "--capex",
        "240000",
        "--power-price",
        "0.10",
        "--pue",
        "1.5",
        "--overhead",
        "0.2",
        *FAST,
    )
    # 1:1 at batch price: 875 x 0.5 = $437.50
    assert d["api_cost_per_day"] == pytest.approx(437.5)
    assert d["primary"]["per_gpu"]["capex_per_gpu"] == pytest.approx(30_000)
    assert d["primary"]["per_gpu"]["pue"] == 1.5 and d["primary"]["per_gpu"]["usd_per_kwh"] == 0.10


def test_scenario_file_and_flag_precedence(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "tokens_per_day: 100M\ninput_share: 0.5\ncompare: [H100]\nhourly_profile: "
        + json.dumps([3] * 6 + [1] * 18)
        + "\n"
    )
    d = _json("--scenario", str(scenario))
    assert d["api_cost_per_day"] == pytest.approx(875.0)  # 1:1
    assert d["load_factor"] == pytest.approx(2.0)  # max 3 / mean 1.5
    d = _json("--scenario", str(scenario), "--input-share", "0.75")
    assert d["api_cost_per_day"] == pytest.approx(562.5)  # the flag wins


def test_config_overrides_catalog_numbers(tmp_path: Path) -> None:
    config = tmp_path / "owstack.yaml"
    config.write_text(
        "economics:\n"
        "  site: {usd_per_kwh: 0.05}\n"
        "  hardware:\n    H100: {capex_per_node: 160000}\n"
        "  prices:\n    gpt-5.4: {input_per_m: 2.0, output_per_m: 10.0}\n"
    )
    d = _json("--tokens-per-day", "100M", "--config", str(config), *FAST)
    # 75M x $2/M + 25M x $10/M = 150 + 250 = $400
    assert d["api_cost_per_day"] == pytest.approx(400.0)
    assert d["primary"]["per_gpu"]["capex_per_gpu"] == pytest.approx(20_000)
    assert d["primary"]["per_gpu"]["usd_per_kwh"] == pytest.approx(0.05)
    assert "overridden" in d["api_price"]["source"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tokens-per-day", "-5"], "--tokens-per-day: must be a positive number"),
        (["--tokens-per-day", "1.5X"], "--tokens-per-day: '1.5X' is not a number"),
        (["--tokens-per-day", "1B", "--input-share", "1.5"], "--input-share: must be a fraction between 0 and 1"),
        (["--tokens-per-day", "1B", "--input-share", "half"], "--input-share: 'half' is not a number"),
        (["--tokens-per-day", "1B", "--hardware", "A100"], "--hardware: unknown option 'A100'; allowed: H100 SXM"),
        (["--tokens-per-day", "1B", "--api", "gpt-9"], "--api: unknown API model 'gpt-9'; allowed:"),
        (["--tokens-per-day", "1B", "--acquisition", "lease"], "--acquisition: Input should be 'own' or 'rent'"),
        (["--tokens-per-day", "1B", "--utilization", "0.5", "--peak-to-mean", "2"], "--utilization and --peak-to-mean"),
        (["--input-share", "0.5"], "--tokens-per-day: required"),
        (["--tokens-per-day", "1B", "--hardware", "H200", "--acquisition", "own"], "no purchase price for H200"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == 2
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("economics:\n  hardware:\n    H100: {capex: 1}\n")
    result = runner.invoke(app, ["plan", "--tokens-per-day", "1B", "--config", str(config)])
    assert result.exit_code == 2
    assert "economics.hardware.H100.capex" in result.stderr


def test_seed_check_json() -> None:
    result = runner.invoke(app, ["plan", "--seed-check", "--json"])
    assert result.exit_code == 0, result.output
    claims = {c["id"]: c for c in json.loads(result.stdout)["claims"]}
    assert claims["api-1750-per-day"]["verdict"] == "does not hold"
    assert claims["api-1750-per-day"]["value"] == pytest.approx(1500.0)


def test_real_subprocess_human_output_and_seed_check() -> None:
    exe = Path(sys.executable).parent / "owstack"
    out = subprocess.run(
        [str(exe), "plan", "--tokens-per-day", "100M", "--compare", "H100"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "$562.50/day" in out and "break-even" in out and "sensitivity" in out
    out = subprocess.run(
        [str(exe), "plan", "--seed-check"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "$1,750" in out and "does not hold" in out and "$1,500.00" in out
    bad = subprocess.run([str(exe), "plan", "--tokens-per-day", "lots"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --tokens-per-day:")
