"""TenantSection: defaults, strictness, and clear messages for bad tenants."""

from __future__ import annotations

from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.errors import ConfigError
from owstack.tenancy.config import TenantSection


def load_tenant(entry: dict[str, Any], config_data: dict[str, Any]) -> TenantSection:
    data = dict(config_data)
    data["tenants"] = {"t1": entry}
    return from_dict(data).file.tenants["t1"]


def test_defaults_are_the_safe_ones() -> None:
    tenant = TenantSection()
    assert tenant.jurisdictions == ("local",)
    assert tenant.layers is None and tenant.allows_layer("coding")
    assert tenant.capture_content is False
    assert tenant.allow_proprietary is False
    assert tenant.reasoning is None and tenant.budget_usd_month is None
    assert tenant.requests_per_minute is None and tenant.tokens_per_minute is None


def test_full_entry_loads(config_data: dict[str, Any]) -> None:
    tenant = load_tenant(
        {
            "jurisdictions": ["eu", "local", "eu"],
            "layers": ["coding", "edge"],
            "reasoning": "budget:512",
            "capture_content": True,
            "allow_proprietary": True,
            "budget_usd_month": 500,
            "requests_per_minute": 60,
            "tokens_per_minute": 10000,
        },
        config_data,
    )
    assert tenant.jurisdictions == ("eu", "local")  # duplicates dropped, order kept
    assert tenant.layers == ("coding", "edge")
    assert tenant.allows_layer("edge") and not tenant.allows_layer("multimodal")
    assert tenant.reasoning == "budget:512" and tenant.capture_content and tenant.budget_usd_month == 500


def test_architecture_example_tenant_validates(config_data: dict[str, Any]) -> None:
    tenant = load_tenant(
        {"jurisdictions": ["eu", "local"], "reasoning": "concise", "budget_usd_month": 500}, config_data
    )
    assert tenant.jurisdictions == ("eu", "local") and tenant.reasoning == "concise"


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"jurisdictions": []}, "tenants.t1.jurisdictions: needs at least one jurisdiction"),
        ({"jurisdictions": ["EU"]}, "tenants.t1.jurisdictions: 'EU' is not a jurisdiction label"),
        ({"jurisdictions": ["eu_fr"]}, "'eu_fr' is not a jurisdiction label"),
        (
            {"layers": ["vision"]},
            "tenants.t1.layers: unknown layer 'vision'; the layers are coding, multimodal, edge",
        ),
        ({"layers": []}, "tenants.t1.layers: needs at least one layer"),
        ({"reasoning": "verbose"}, "tenants.t1.reasoning: unknown reasoning policy 'verbose'"),
        ({"reasoning": "budget:-1"}, "tenants.t1.reasoning: the thinking budget must be >= 0"),
        ({"budget_usd_month": -5}, "tenants.t1.budget_usd_month"),
        ({"requests_per_minute": 0}, "tenants.t1.requests_per_minute"),
        ({"jurisdiction": ["eu"]}, "tenants.t1.jurisdiction: unknown field"),
        ({"capture_content": "maybe"}, "tenants.t1.capture_content"),
    ],
)
def test_bad_tenant_entries_name_the_field(entry: dict[str, Any], fragment: str, config_data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load_tenant(entry, config_data)
    assert fragment in str(info.value)


def test_bad_tenant_name(config_data: dict[str, Any]) -> None:
    config_data["tenants"] = {"bad name!": {}}
    with pytest.raises(ConfigError, match="name 'bad name!' must be 1-64"):
        from_dict(config_data)


def test_section_is_frozen() -> None:
    tenant = TenantSection()
    with pytest.raises(Exception, match="frozen"):
        tenant.allow_proprietary = True
