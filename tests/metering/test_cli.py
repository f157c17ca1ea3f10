"""`owstack usage` and `owstack savings` on a ledger filled through the meter stage."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from metering_helpers import BACKENDS, make_config, make_ctx, rows
from typer.testing import CliRunner

from owstack import storage
from owstack.cli import app
from owstack.metering.report import savings
from owstack.metering.stage import MeterStage
from owstack.pipeline.context import RequestContext
from owstack.types import Usage

runner = CliRunner()
DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


def write_config(tmp_path: Path, url: str, **metering: Any) -> Path:
    path = tmp_path / "owstack.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": url}, "backends": BACKENDS, "metering": metering}))
    return path


def at(ctx: RequestContext, when: datetime, tenant: str = "default") -> RequestContext:
    ctx.received_at, ctx.tenant = when.timestamp(), tenant
    return ctx


def fill(url: str) -> None:
    """Five requests over two days: served, served, failed, refused, proprietary."""
    contexts = [
        at(make_ctx("a", usage=Usage(1000, 100, 10, 200, True), latency=1.0, ttft=0.1), DAY1, "acme"),
        at(make_ctx("b", usage=Usage(2000, 300, 0, 0, True), latency=3.0, ttft=0.3), DAY1, "acme"),
        at(make_ctx("c", status=502, latency=5.0, ttft=None), DAY2, "beta"),
        at(make_ctx("d", layer=None, backend=None, status=401, latency=0.01, ttft=None), DAY2, "beta"),
        at(make_ctx("e", layer="edge", backend="oai", usage=Usage(400, 40, 0, 0, True), latency=2.0, ttft=0.5), DAY2),
    ]
    stage = MeterStage(make_config(url))

    async def go() -> None:
        await stage.start()
        for ctx in contexts:
            await stage.after(ctx)
        await stage.aclose()

    asyncio.run(go())


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    return result


def test_usage_by_layer_sums_and_percentiles(db_url: str, tmp_path: Path) -> None:
    fill(db_url)
    cfg = write_config(tmp_path, db_url)
    result = invoke("usage", "--config", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    groups = {g["key"]: g for g in report["groups"]}
    assert list(groups) == ["coding", "edge", "(none)"]
    coding = groups["coding"]
    assert (coding["requests"], coding["errors"]) == (3, 1)
    tokens = [coding[k] for k in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")]
    assert tokens == [3000, 400, 10, 200]
    assert coding["latency_p50_s"] == pytest.approx(3.0) and coding["latency_p95_s"] == pytest.approx(5.0)
    assert coding["ttft_p50_s"] == pytest.approx(0.1)  # nearest rank of [0.1, 0.3]
    ledger = rows(db_url)
    by_id = {r["request_id"]: r for r in ledger}
    assert coding["cost_usd"] == pytest.approx(sum(by_id[i]["cost_usd"] for i in "abc"))
    assert coding["counterfactual_usd"] == pytest.approx(sum(by_id[i]["counterfactual_usd"] for i in "abc"))
    total = report["total"]
    assert total["requests"] == 5 and total["errors"] == 2
    assert total["savings_usd"] == pytest.approx(total["counterfactual_usd"] - total["cost_usd"])


def test_usage_by_other_dimensions_and_time_windows(sqlite_url: str, tmp_path: Path) -> None:
    fill(sqlite_url)
    cfg = str(write_config(tmp_path, sqlite_url))

    def keys(*args: str) -> dict[str, int]:
        result = invoke("usage", "--config", cfg, "--json", *args)
        assert result.exit_code == 0, result.output
        return {g["key"]: g["requests"] for g in json.loads(result.output)["groups"]}

    assert keys("--by", "day") == {"2026-11-20": 2, "2026-11-21": 3}
    assert keys("--by", "tenant") == {"acme": 2, "beta": 2, "default": 1}
    assert keys("--by", "backend") == {"gpu": 3, "oai": 1, "(none)": 1}
    assert keys("--by", "model")["gpt-5.4"] == 1
    assert keys("--by", "day", "--since", "2026-11-21") == {"2026-11-21": 3}
    assert keys("--by", "day", "--until", "2026-11-20") == {"2026-11-20": 2}  # a bare date includes its day
    assert keys("--since", "2026-11-20T12:00:00Z", "--until", "2026-11-21T12:00") == {}


def test_usage_table_is_printed_for_people(sqlite_url: str, tmp_path: Path) -> None:
    fill(sqlite_url)
    result = invoke("usage", "--config", str(write_config(tmp_path, sqlite_url)), "--by", "backend")
    assert result.exit_code == 0
    assert "Usage by backend" in result.output and "gpu" in result.output and "total" in result.output


def test_savings_to_date_and_payback(db_url: str, tmp_path: Path) -> None:
    fill(db_url)
    cfg = write_config(tmp_path, db_url, capex_usd=1000.0)
    result = invoke("savings", "--config", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    ledger = rows(db_url)
    cost = sum(r["cost_usd"] or 0 for r in ledger)
    counterfactual = sum(r["counterfactual_usd"] or 0 for r in ledger)
    capital = sum(r["capital_usd"] or 0 for r in ledger)
    assert out["to_date"]["requests"] == 5
    assert out["to_date"]["savings_usd"] == pytest.approx(counterfactual - cost)
    payback = out["payback"]
    assert payback["capex_usd"] == 1000.0 and payback["capex_source"] == "metering.capex_usd"
    assert payback["recovered_usd"] == pytest.approx(counterfactual - cost + capital)
    assert payback["progress"] == pytest.approx(payback["recovered_usd"] / 1000.0)


def test_savings_projects_the_month_from_the_run_rate(sqlite_url: str) -> None:
    fill(sqlite_url)  # DAY1 and DAY2; "now" is 2026-11-22 00:00: the run-rate window starts at DAY1
    now = datetime(2026, 11, 22, tzinfo=UTC)
    out = savings(sqlite_url, 500.0, capex_source="test", now=now)
    saved = out["to_date"]["savings_usd"]
    span = (now - DAY1).total_seconds()
    assert out["run_rate"]["window_s"] == pytest.approx(span)
    remaining = (datetime(2026, 12, 1, tzinfo=UTC) - now).total_seconds()
    assert out["month"]["savings_usd"] == pytest.approx(saved)
    assert out["month"]["projected_savings_usd"] == pytest.approx(saved + saved / span * remaining)
    later = savings(sqlite_url, 500.0, now=datetime(2026, 12, 5, tzinfo=UTC))
    assert later["month"]["requests"] == 0 and later["to_date"]["requests"] == 5


def test_capex_defaults_to_the_owned_hardware_profiles(sqlite_url: str, tmp_path: Path) -> None:
    from owstack.economics.costs import hardware_profile

    fill(sqlite_url)
    result = invoke("savings", "--config", str(write_config(tmp_path, sqlite_url)), "--json")
    payback = json.loads(result.output)["payback"]
    profile = hardware_profile("8xH100")
    assert payback["capex_usd"] == pytest.approx((profile.capex_per_gpu or 0) * 8)
    assert payback["capex_source"] == "hardware profiles of the backends"
    text = invoke("savings", "--config", str(write_config(tmp_path, sqlite_url)))
    assert "To date" in text.output and "Payback of" in text.output


def test_missing_and_empty_ledgers_are_reported_plainly(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    cfg = str(write_config(tmp_path, f"sqlite:///{db}"))
    for command in ("usage", "savings"):
        result = invoke(command, "--config", cfg)
        assert result.exit_code == 0 and "no ledger at" in result.output
    assert not db.exists()  # reading never creates the database
    storage.migrate(f"sqlite:///{db}")
    result = invoke("usage", "--config", cfg, "--json")
    assert result.exit_code == 0 and json.loads(result.output)["ledger"] == "empty"
    assert "has no requests yet" in invoke("savings", "--config", cfg).output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["usage", "--by", "week"], "--by: 'week' is not one of layer, backend, tenant, day, model"),
        (["usage", "--since", "yesterday"], "--since: 'yesterday' is not a date"),
        (["usage", "--until", "2026-13-45"], "--until: '2026-13-45' is not a date"),
        (["usage", "--since", "2026-11-21", "--until", "2026-11-20"], "--since must be before --until"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], needle: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {result.output.strip().removeprefix('error: ')}"]
    assert needle in result.output and "Traceback" not in result.output


def test_an_unreachable_database_exits_1_without_the_password(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "postgresql://owstack:s3cret@127.0.0.1:1/ledger")
    result = invoke("usage", "--config", str(cfg))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot read the ledger at postgresql://owstack:***@")
    assert "s3cret" not in result.output


def test_usage_runs_as_a_real_command(sqlite_url: str, tmp_path: Path) -> None:
    fill(sqlite_url)
    cfg = write_config(tmp_path, sqlite_url)
    exe = Path(sys.executable).with_name("owstack")
    done = subprocess.run(
        [str(exe), "usage", "--config", str(cfg), "--by", "tenant", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert {g["key"] for g in json.loads(done.stdout)["groups"]} == {"acme", "beta", "default"}
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    done = subprocess.run(
        [str(exe), "usage", "-c", str(cfg), "--since", since], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "Usage by layer" in done.stdout
