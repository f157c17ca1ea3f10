"""The cost rules, checked against hand computations from the published prices (FACTS.md)."""

from __future__ import annotations

import pytest
from metering_helpers import BACKENDS, make_config

from owstack.config.load import from_dict
from owstack.economics.costs import hardware_profile
from owstack.errors import ConfigError
from owstack.metering.costs import Pricing, Utilization

URL = "sqlite:///unused.db"
# GPT-5.4: $2.50 / $15 per M tokens, cached input $0.25; GPT-5.4 mini $0.75 / $4.50, cached $0.075
GPT54 = (2.50, 15.0, 0.25)
GPT54_MINI = (0.75, 4.50, 0.075)


def by_hand(price: tuple[float, float, float], prompt: int, completion: int, cached: int = 0) -> float:
    inp, out, cache = price
    return ((prompt - cached) * inp + cached * cache + completion * out) / 1e6


@pytest.fixture(scope="module")
def pricing() -> Pricing:
    return Pricing.from_config(make_config(URL))


def test_counterfactual_defaults_price_each_layer(pricing: Pricing) -> None:
    assert {layer: p.model for layer, p in pricing.counterfactual.items()} == {
        "coding": "gpt-5.4",
        "multimodal": "gpt-5.4",
        "edge": "gpt-5.4-mini",
    }
    costs = pricing.price("gpu", "coding", (12_000, 800, 4_000), 3.0, None)
    assert costs.counterfactual_usd == pytest.approx(by_hand(GPT54, 12_000, 800, 4_000))
    edge = pricing.price("edge-local", "edge", (500, 200, 0), 1.0, None)
    assert edge.counterfactual_usd == pytest.approx(by_hand(GPT54_MINI, 500, 200))


def test_selfhost_cost_is_the_deployment_rate_times_busy_share_over_utilization(pricing: Pricing) -> None:
    per_s = hardware_profile("8xH100").usd_per_hour / 3600
    unmeasured = pricing.price("gpu", "coding", (100, 10, 0), 4.0, None)
    assert unmeasured.cost_kind == "selfhost"
    assert unmeasured.cost_usd == pytest.approx(per_s * 4.0)  # utilization not measured yet: busy time only
    assert unmeasured.utilization == 1.0
    loaded = pricing.price("gpu", "coding", (100, 10, 0), 4.0, Utilization(utilization=0.5, concurrency=8.0))
    assert loaded.cost_usd == pytest.approx(per_s * (4.0 / 8.0) / 0.5)
    idle = pricing.price("gpu", "coding", (100, 10, 0), 4.0, Utilization(utilization=0.001, concurrency=1.0))
    assert idle.cost_usd == pytest.approx(per_s * 4.0 / 0.05)  # the utilization floor
    assert idle.utilization == 0.05  # the divisor actually used is what the ledger keeps


def test_capital_share_is_the_amortization_part_of_owned_hardware(pricing: Pricing) -> None:
    profile = hardware_profile("8xH100")
    costs = pricing.price("gpu", "coding", (1, 1, 0), 10.0, None)
    assert profile.acquisition == "own"
    share = profile.capital_per_gpu_hour / (profile.capital_per_gpu_hour + profile.power_per_gpu_hour)
    assert costs.cost_usd is not None and costs.capital_usd is not None and profile.capex_per_gpu is not None
    assert costs.capital_usd == pytest.approx(costs.cost_usd * share)
    assert 0 < costs.capital_usd < costs.cost_usd
    assert pricing.capex_usd() == pytest.approx(profile.capex_per_gpu * 8)


def test_embedded_engine_costs_its_cpu_power() -> None:
    pricing = Pricing.from_config(make_config(URL, embedded_watts=40.0, embedded_usd_per_kwh=0.20))
    costs = pricing.price("edge-local", "edge", (10, 10, 0), 9.0, None)
    assert costs.cost_kind == "embedded"
    assert costs.cost_usd == pytest.approx(40.0 / 1000 * 9.0 / 3600 * 0.20)


def test_proprietary_backend_costs_its_api_price_and_saves_nothing(pricing: Pricing) -> None:
    costs = pricing.price("oai", "edge", (3_000, 400, 1_000), 2.0, None)
    assert costs.cost_kind == "api"
    assert costs.cost_usd == pytest.approx(by_hand(GPT54, 3_000, 400, 1_000))
    assert costs.counterfactual_usd == costs.cost_usd and costs.counterfactual_model == "gpt-5.4"


def test_unknown_and_refused(pricing: Pricing) -> None:
    unknown = pricing.price("plain", "multimodal", (100, 100, 0), 1.0, None)
    assert unknown.cost_usd is None and unknown.cost_kind == "unknown"
    assert unknown.counterfactual_usd == pytest.approx(by_hand(GPT54, 100, 100))
    refused = pricing.price(None, None, (0, 0, 0), None, None)
    assert (refused.cost_usd, refused.cost_kind, refused.counterfactual_usd) == (0.0, "none", None)


def test_batch_rule_halves_the_counterfactual() -> None:
    pricing = Pricing.from_config(make_config(URL, counterfactual_batch=True))
    costs = pricing.price("gpu", "coding", (10_000, 1_000, 0), 1.0, None)
    assert costs.counterfactual_usd == pytest.approx(by_hand(GPT54, 10_000, 1_000) / 2)


def test_configured_counterfactual_overrides_the_default() -> None:
    raw = {"backends": BACKENDS, "counterfactual": {"edge": "claude-haiku-4.5"}}
    pricing = Pricing.from_config(from_dict(raw))
    assert pricing.counterfactual["edge"].model == "claude-haiku-4.5"
    assert pricing.counterfactual["coding"].model == "gpt-5.4"


def test_bad_hardware_and_bad_counterfactual_name_their_field() -> None:
    bad_hw = {"backends": {**BACKENDS, "gpu": {**BACKENDS["gpu"], "hardware": "8xNOPE"}}}
    with pytest.raises(ConfigError, match=r"^backends\.gpu\.hardware: "):
        Pricing.from_config(from_dict(bad_hw))
    with pytest.raises(ConfigError, match=r"^counterfactual\.edge: "):
        Pricing.from_config(from_dict({"backends": BACKENDS, "counterfactual": {"edge": "gpt-9000"}}))


def test_the_economics_sections_overrides_reach_the_costs() -> None:
    econ = {"prices": {"gpt-5.4": {"input_per_m": 2.0}}, "hardware": {"H100": {"capex_per_node": 160_000}}}
    pricing = Pricing.from_config(from_dict({"backends": BACKENDS, "economics": econ}))
    costs = pricing.price("gpu", "coding", (100_000, 0, 0), 3600.0, None)
    assert costs.counterfactual_usd == pytest.approx(0.2)  # 100K input tokens at the negotiated $2.00 per M
    assert costs.cost_usd == pytest.approx(hardware_profile("8xH100", {"capex_per_node": 160_000}).usd_per_hour)
    assert pricing.capex_usd() == pytest.approx(160_000)
    api = pricing.price("oai", "edge", (100_000, 0, 0), 1.0, None)
    assert api.cost_usd == pytest.approx(0.2)


def test_long_prompts_bill_at_the_long_context_rate(pricing: Pricing) -> None:
    # GPT-5.4 prompts over 272K tokens: input x2, output x1.5
    costs = pricing.price("gpu", "coding", (300_000, 1_000, 0), 1.0, None)
    assert costs.counterfactual_usd == pytest.approx((300_000 * 2.50 * 2 + 1_000 * 15.0 * 1.5) / 1e6)


def test_the_writers_api_price_is_api_costs_float_exactly() -> None:
    """`_api_usd` (the ledger writer's inlined arithmetic) must give `api_cost`'s exact float, rules included."""
    from owstack.catalog.prices import api_price
    from owstack.economics.costs import api_cost
    from owstack.metering.costs import _api_usd

    long_rule = {"long_context_threshold": 200_000, "long_context_input_multiplier": 2.0}
    prices = [
        api_price("gpt-5.4"),
        api_price("gpt-5.4-mini"),
        api_price("gpt-5.4", {**long_rule, "batch_discount": 0.5}),
    ]
    cases = [(0, 0, 0), (1, 1, 0), (420, 130, 64), (123_457, 9_999, 123_457), (250_001, 77, 1_000), (10**9, 3, 7)]
    for price in prices:
        for prompt, completion, cached in cases:
            for batch in (False, True):
                assert _api_usd(price, prompt, completion, cached, batch) == api_cost(
                    price, prompt, completion, cached, batch
                )
    with pytest.raises(ValueError, match="prompt_tokens"):  # bad counts are still refused
        _api_usd(prices[0], -1, 0, 0, False)
