"""Hardware, price and throughput catalogs: every number sourced and dated, names resolved, errors clear."""

from __future__ import annotations

import math
from typing import Any

import pytest

from owstack.catalog import load_data
from owstack.catalog.hardware import cost_defaults, hardware, hardware_options
from owstack.catalog.prices import api_models, api_price
from owstack.errors import ConfigError


def _numbers_have_sources(node: Any, inherited: bool, path: str) -> list[str]:
    """Paths of numbers with no `source` and `date` in their own mapping or an enclosing one."""
    missing: list[str] = []
    if isinstance(node, dict):
        here = inherited or ("source" in node and "date" in node)
        for key, value in node.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float) and not here:
                missing.append(f"{path}.{key}")
            missing += _numbers_have_sources(value, here, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            missing += _numbers_have_sources(value, inherited, f"{path}[{i}]")
    return missing


@pytest.mark.parametrize("name", ["hardware", "prices", "throughput"])
def test_every_catalog_number_has_a_source_and_date(name: str) -> None:
    data = load_data(name)
    assert _numbers_have_sources(data, False, name) == []


def test_hardware_ranges_are_ordered_and_sourced() -> None:
    for option in hardware_options():
        hw = hardware(option)
        for rng in (hw.node_power_kw, hw.capex_per_node, hw.rental_per_gpu_hour):
            if rng is not None:
                assert rng.low <= rng.default <= rng.high, (hw.id, rng)
                assert rng.source and rng.date.startswith("20")
    for key, rng in cost_defaults().items():
        assert rng.low <= rng.default <= rng.high, key


def test_issue_hardware_options_are_in_the_catalog() -> None:
    options = hardware_options()
    for name in ("H100 SXM", "H200 SXM", "B200", "GB200 NVL72", "Vera Rubin NVL72"):
        assert name in options


@pytest.mark.parametrize(
    ("name", "hw_id"),
    [
        ("H100", "h100"),
        ("h100", "h100"),
        ("H100 SXM", "h100"),
        ("dgx h100", "h100"),
        ("GB200 NVL72", "gb200-nvl72"),
        ("gb200-nvl72", "gb200-nvl72"),
        ("Vera Rubin NVL72", "vera-rubin-nvl72"),
        ("B200", "b200"),
    ],
)
def test_hardware_names(name: str, hw_id: str) -> None:
    assert hardware(name).id == hw_id


def test_hardware_facts() -> None:
    h100 = hardware("H100")
    # DGX H100 about 10.2 kW over 8 GPUs
    assert h100.power_kw_per_gpu == pytest.approx(10.2 / 8)
    assert (h100.gpus_per_node, h100.memory_gb) == (8, 80)
    nvl = hardware("GB200 NVL72")
    assert nvl.gpus_per_node == 72 and nvl.is_rack
    # conflicting Vera Rubin sources: the conservative (higher) value is the default
    vr = hardware("Vera Rubin NVL72")
    assert (
        vr.capex_per_node is not None and vr.capex_per_node.default == 7_800_000 and vr.capex_per_node.low == 4_000_000
    )
    assert vr.node_power_kw is not None and vr.node_power_kw.default == 230
    assert not vr.available
    assert hardware("H200").capex_per_node is None


def test_unknown_hardware_lists_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'A100'; allowed: H100 SXM, H200 SXM, B200"):
        hardware("A100")


def test_api_prices() -> None:
    p = api_price("gpt-5.4")
    assert (p.input_per_m, p.output_per_m, p.cached_input_per_m, p.batch_discount) == (2.5, 15.0, 0.25, 0.5)
    assert p.long_context_threshold == 272_000 and p.residency_multiplier == pytest.approx(1.1)
    assert api_price("claude-sonnet-4-5").model == "claude-sonnet-4.6"
    assert api_price("OpenAI/GPT-5.4").model == "gpt-5.4"
    assert api_price("gemini-2.5-flash-lite").output_per_m == pytest.approx(0.40)
    for model in api_models():
        price = api_price(model)
        assert price.cached_input_per_m <= price.input_per_m
        assert price.source and price.date
        assert math.isfinite(price.input_per_m + price.output_per_m)


def test_api_price_overrides() -> None:
    p = api_price("gpt-5.4", {"input_per_m": 2.0})
    assert p.input_per_m == 2.0 and p.output_per_m == 15.0 and "overridden" in p.source
    custom = api_price("in-house-contract", {"input_per_m": 1, "output_per_m": 4})
    assert (custom.input_per_m, custom.output_per_m, custom.cached_input_per_m) == (1.0, 4.0, 1.0)


def test_api_price_errors_name_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"unknown API model 'gpt-9'; allowed: .*gpt-5\.4"):
        api_price("gpt-9")
    with pytest.raises(ConfigError, match=r"inptu_per_m.*allowed: provider, input_per_m"):
        api_price("gpt-5.4", {"inptu_per_m": 1})
    with pytest.raises(ConfigError, match="input_per_m: must be a number >= 0"):
        api_price("gpt-5.4", {"input_per_m": -1})
    with pytest.raises(ConfigError, match="batch_discount: must be a fraction"):
        api_price("gpt-5.4", {"batch_discount": 2})
