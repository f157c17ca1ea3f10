"""Residency rules, candidate filtering, the refusal, and the report (a backend per jurisdiction)."""

from __future__ import annotations

from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.config.schema import BackendSection
from owstack.errors import PermissionDenied, ResidencyViolation
from owstack.tenancy.config import TenantSection
from owstack.tenancy.report import residency_report
from owstack.tenancy.residency import (
    allowed,
    filter_candidates,
    label_covers,
    raise_if_empty,
    reason,
)


def backend(jurisdiction: str, proprietary: bool = False) -> BackendSection:
    return BackendSection(
        engine="vllm", url="http://h:1/v1", model="m", jurisdiction=jurisdiction, proprietary=proprietary
    )


def tenant(*labels: str, allow_proprietary: bool = False) -> TenantSection:
    return TenantSection(jurisdictions=labels, allow_proprietary=allow_proprietary)


@pytest.mark.parametrize(
    ("tenant_label", "backend_label", "expected"),
    [
        ("eu", "eu", True),
        ("eu", "eu-fr", True),
        ("eu", "eu-fr-par", True),
        ("eu-fr", "eu-fr", True),
        ("eu-fr", "eu-de", False),
        ("eu-fr", "eu", False),
        ("eu", "europe", False),  # a prefix of the text is not a parent label
        ("eu", "us", False),
        ("eu", "local", False),
        ("local", "local", True),
        ("us", "us-east1", True),
    ],
)
def test_labels_are_hierarchical(tenant_label: str, backend_label: str, expected: bool) -> None:
    assert label_covers(tenant_label, backend_label) is expected
    assert allowed(backend(backend_label), tenant(tenant_label)) is expected


def test_proprietary_needs_jurisdiction_and_explicit_allowance() -> None:
    api_us = backend("us", proprietary=True)
    assert allowed(api_us, tenant("us")) is False
    assert allowed(api_us, tenant("eu", allow_proprietary=True)) is False
    assert allowed(api_us, tenant("us", allow_proprietary=True)) is True
    assert allowed(backend("us"), tenant("us")) is True
    assert "allow_proprietary" in (reason(api_us, tenant("us")) or "")
    assert "outside eu" in (reason(api_us, tenant("eu", allow_proprietary=True)) or "")
    assert reason(api_us, tenant("us", allow_proprietary=True)) is None


def test_open_mode_reaches_self_hosted_only() -> None:
    assert allowed(backend("us"), None) is True
    assert allowed(backend("local"), None) is True
    assert allowed(backend("us", proprietary=True), None) is False


def test_filter_keeps_order_and_excludes_unknown_names() -> None:
    backends = {"fr": backend("eu-fr"), "us": backend("us"), "de": backend("eu-de"), "loc": backend("local")}
    kept, excluded = filter_candidates(["us", "fr", "ghost", "de", "loc"], backends, tenant("eu"))
    assert kept == ["fr", "de"] and excluded == ["us", "ghost", "loc"]
    kept, excluded = filter_candidates(["us", "fr", "de"], backends, tenant("eu-fr", "local"))
    assert kept == ["fr"] and excluded == ["us", "de"]


def test_refusal_names_tenant_layer_and_jurisdictions() -> None:
    backends = {"us": backend("us"), "api": backend("us", proprietary=True)}
    backends["api"] = BackendSection(
        engine="openai",
        url="https://secret-host.example/v1",
        model="gpt",
        jurisdiction="us",
        proprietary=True,
    )
    raise_if_empty(["x"], ["us"], tenant("eu"), "coding")  # something left: no error
    with pytest.raises(ResidencyViolation) as info:
        raise_if_empty([], ["us", "api"], tenant("eu", "local"), "coding", tenant_name="acme-eu", backends=backends)
    error = info.value
    assert isinstance(error, PermissionDenied) and error.status == 403 and error.code == "residency_violation"
    assert "tenant 'acme-eu'" in error.message and "'coding'" in error.message
    assert "eu, local" in error.message and "us, us proprietary" in error.message
    assert "secret-host" not in error.message and "http" not in error.message
    body = error.body()["error"]
    assert body["type"] == "permission_error" and body["code"] == "residency_violation"


def test_refusal_without_names_still_clear() -> None:
    with pytest.raises(ResidencyViolation, match=r"this tenant may send data only to eu.*'edge'.*\(2 backend"):
        raise_if_empty([], ["a", "b"], tenant("eu"), "edge")
    with pytest.raises(ResidencyViolation, match="open mode reaches none"):
        raise_if_empty([], ["api"], None, "coding", backends={"api": backend("us", proprietary=True)})


def test_report_per_tenant_and_layer(config_data: dict[str, Any]) -> None:
    report = residency_report(from_dict(config_data))
    reach = {t.tenant: {lr.layer: lr for lr in t.layers} for t in report.tenants}
    acme = reach["acme-eu"]
    assert acme["coding"].primary == ["vllm-eu-fr"] and acme["coding"].fallback == ["edge-local"]
    assert dict(acme["coding"].excluded).keys() == {"vllm-us", "openai-us"}
    assert acme["multimodal"].primary == ["vllm-eu-de"] and acme["multimodal"].fallback == []
    fr = reach["fr-only"]
    assert fr["coding"].primary == ["vllm-eu-fr"] and fr["coding"].fallback == []
    assert not fr["multimodal"].permitted and fr["multimodal"].ok  # not its layer: not a problem
    us = reach["us-prop"]
    assert us["coding"].primary == ["vllm-us"] and us["coding"].fallback == ["openai-us"]
    assert us["multimodal"].primary == [] and us["multimodal"].fallback == ["openai-us"]
    # us-prop reaches no `local` backend, so its edge layer has none
    assert report.problems == [
        "tenant 'us-prop': layer 'edge' has no backend inside us (edge-local: jurisdiction local is outside us)"
    ]
    assert report.ok is False
    data = report.to_dict()
    assert data["ok"] is False and data["tenants"]["acme-eu"]["layers"]["coding"]["fallback"] == ["edge-local"]


def test_report_ok_and_open_mode(config_data: dict[str, Any]) -> None:
    config_data["tenants"]["us-prop"]["jurisdictions"] = ["us", "local"]
    assert residency_report(from_dict(config_data)).ok is True
    del config_data["tenants"]
    config_data["layers"]["multimodal"] = {"backends": ["openai-us"]}
    report = residency_report(from_dict(config_data))
    assert [t.tenant for t in report.tenants] == ["(open mode)"]
    assert report.problems == [
        "(open mode): layer 'multimodal' has no backend it may reach "
        "(openai-us: proprietary (us); open mode reaches no proprietary API)"
    ]
