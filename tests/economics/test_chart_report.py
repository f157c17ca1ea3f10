"""`--chart` and `--report`: a real PNG whose break-even marks match plan(); a self-contained, escaped page."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owstack.cli import app
from owstack.economics.chart import chart_data, draw_chart
from owstack.economics.planner import plan
from owstack.economics.report import render_report
from owstack.economics.scenario import make_scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    return plan(make_scenario({"tokens_per_day": "1.5B", "compare": ["H100", "B200", "GB200 NVL72"]}))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    return width, height


def test_chart_break_even_marks_match_plan(result) -> None:  # type: ignore[no-untyped-def]
    data = chart_data(result)
    assert [s.label.split(" (")[0] for s in data.options] == [o.name for o in result.options]
    for series, option in zip(data.options, result.options, strict=True):
        # found numerically on the re-sized staircase, independent of the planner's closed form
        assert series.breakeven is not None
        assert series.breakeven[0] == pytest.approx(option.breakeven.first, rel=1e-6)
        # the mark sits on the API line
        assert series.breakeven[1] == pytest.approx(result.api_cost_per_day / 1.5e9 * series.breakeven[0])
    # the staircase never goes down as volume grows, and starts at one whole node
    for series, option in zip(data.options, result.options, strict=True):
        assert all(b >= a - 1e-9 for a, b in zip(series.cost_per_day, series.cost_per_day[1:], strict=False))
        per_node = option.per_gpu.usd_per_gpu_hour_effective * 24 * option.fleet.unit_gpus
        assert series.cost_per_day[0] == pytest.approx(per_node)


def test_chart_png_is_real(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = draw_chart(chart_data(result), tmp_path / "c.png")
    data = path.read_bytes()
    assert len(data) > 20_000
    assert _png_size(data) == (1100, 660)  # 10 x 6 inches at 110 dpi
    assert data.rstrip().endswith(b"IEND\xaeB`\x82")


def test_report_is_self_contained(result) -> None:  # type: ignore[no-untyped-def]
    page = render_report(result, chart_png=PNG_MAGIC + b"fake")
    assert page.startswith("<!doctype html>")
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in page
    assert "http://" not in page and "https://" not in page.replace("openai.com", "")
    # API: 1,500M x (0.75 x $2.50 + 0.25 x $15)/M = $8,437.50
    for text in ("Break-even tokens per day", "Sensitivity", "Load curve", "H100 SXM", "$8,437.50"):
        assert text in page


def test_report_escapes_everything(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"economics": {"prices": {evil: {"input_per_m": 1, "output_per_m": 2}}}}))
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--tokens-per-day",
            "100M",
            "--api",
            evil,
            "--compare",
            "H100",
            "--config",
            str(config),
            "--report",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert evil not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)


def test_cli_chart_and_report_files(tmp_path: Path) -> None:
    png, html = tmp_path / "p.png", tmp_path / "p.html"
    res = CliRunner().invoke(
        app,
        [
            "plan",
            "--tokens-per-day",
            "100M",
            "--compare",
            "H100",
            "--compare",
            "B200",
            "--chart",
            str(png),
            "--report",
            str(html),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["chart"] == str(png) and d["report"] == str(html)
    assert _png_size(png.read_bytes()) == (1100, 660)
    assert "data:image/png;base64," in html.read_text()
