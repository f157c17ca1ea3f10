"""AuthenticateStage, check_layer and open_mode_allowed, with a real key store on SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from owstack.config.load import Config, from_dict
from owstack.errors import AuthenticationFailed, PermissionDenied
from owstack.pipeline.context import RequestContext
from owstack.tenancy import is_loopback, open_mode_allowed
from owstack.tenancy.keys import KeyStore
from owstack.tenancy.stage import MISSING, AuthenticateStage, check_layer


def run(stage: AuthenticateStage, headers: dict[str, str]) -> RequestContext:
    ctx = RequestContext(request_id="req-1", headers=headers)
    asyncio.run(stage.before(ctx))
    return ctx


def refused(stage: AuthenticateStage, headers: dict[str, str]) -> AuthenticationFailed:
    with pytest.raises(AuthenticationFailed) as info:
        run(stage, headers)
    assert info.value.status == 401 and info.value.body()["error"]["type"] == "authentication_error"
    return info.value


@pytest.fixture
def config(config_data: dict[str, Any]) -> Config:
    return from_dict(config_data)


@pytest.fixture
def store(sqlite_url: str) -> KeyStore:
    return KeyStore(sqlite_url)


def test_bearer_and_x_api_key(config: Config, store: KeyStore) -> None:
    stage = AuthenticateStage(config, store)
    key, record = store.create("acme-eu")
    for headers in (
        {"authorization": f"Bearer {key}"},
        {"authorization": f"bearer   {key} "},
        {"x-api-key": key},
        {"authorization": f"Bearer {key}", "x-api-key": key},
    ):
        ctx = run(stage, headers)
        assert ctx.tenant == "acme-eu" and ctx.key_id == record.key_id
        assert ctx.policy is config.file.tenants["acme-eu"]
        assert ctx.allowed_layers is None


def test_missing_and_malformed_headers(config: Config, store: KeyStore) -> None:
    stage = AuthenticateStage(config, store)
    key, _ = store.create("acme-eu")
    other, _ = store.create("acme-eu")
    assert refused(stage, {}).message == MISSING
    assert refused(stage, {"x-api-key": "  "}).message == MISSING
    assert "Bearer <key>" in refused(stage, {"authorization": f"Basic {key}"}).message
    assert "Bearer <key>" in refused(stage, {"authorization": "Bearer"}).message
    assert "different keys" in refused(stage, {"authorization": f"Bearer {key}", "x-api-key": other}).message
    assert refused(stage, {"authorization": "Bearer sk-proj-abc"}).message.startswith("malformed API key")


def test_revoked_key_is_refused(config: Config, store: KeyStore) -> None:
    stage = AuthenticateStage(config, store)
    key, record = store.create("acme-eu")
    run(stage, {"x-api-key": key})
    store.revoke(record.key_id)
    assert refused(stage, {"x-api-key": key}).message == f"API key {record.key_id} has been revoked"


def test_key_of_a_tenant_no_longer_configured(config_data: dict[str, Any], store: KeyStore) -> None:
    key, record = store.create("gone-tenant")
    stage = AuthenticateStage(from_dict(config_data), store)
    error = refused(stage, {"authorization": f"Bearer {key}"})
    assert f"API key {record.key_id} belongs to tenant 'gone-tenant'" in error.message
    assert "not in the gateway's configuration" in error.message


@pytest.mark.parametrize(
    ("tenant", "key_layers", "expected"),
    [
        ("acme-eu", None, None),
        ("acme-eu", ["coding"], {"coding"}),
        ("fr-only", None, {"coding"}),
        ("fr-only", ["coding", "edge"], {"coding"}),
        ("fr-only", ["edge"], set()),
    ],
)
def test_allowed_layers_intersect_key_and_tenant(
    config: Config, store: KeyStore, tenant: str, key_layers: list[str] | None, expected: set[str] | None
) -> None:
    key, _ = store.create(tenant, layers=key_layers)
    ctx = run(AuthenticateStage(config, store), {"x-api-key": key})
    assert ctx.allowed_layers == (None if expected is None else frozenset(expected))


def test_check_layer() -> None:
    ctx = RequestContext(request_id="r", tenant="fr-only", key_id="0123456789ab", allowed_layers=frozenset({"coding"}))
    check_layer(ctx, "coding")
    with pytest.raises(PermissionDenied) as info:
        check_layer(ctx, "edge")
    error = info.value
    assert error.status == 403 and error.code == "layer_not_allowed"
    assert error.message == "API key 0123456789ab (tenant 'fr-only') may not use layer 'edge'; it may use: coding"
    open_ctx = RequestContext(request_id="r")
    check_layer(open_ctx, "edge")  # open mode: every layer
    with pytest.raises(PermissionDenied, match="it may use: none"):
        check_layer(RequestContext(request_id="r", allowed_layers=frozenset()), "edge")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("::ffff:10.0.0.5", False),
        ("gateway.internal", False),
        ("localhost.evil.example", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_open_mode_allowed(config_data: dict[str, Any]) -> None:
    with_tenants = from_dict(config_data)
    ok, message = open_mode_allowed(with_tenants, "127.0.0.1")
    assert ok is False and "API keys required" in message and "acme-eu" in message
    del config_data["tenants"]
    no_tenants = from_dict(config_data)
    ok, message = open_mode_allowed(no_tenants, "127.0.0.1")
    assert ok is True and "running OPEN" in message and "127.0.0.1" in message
    ok, message = open_mode_allowed(no_tenants, "0.0.0.0")
    assert ok is False and "refusing to serve 0.0.0.0 without API keys" in message
    ok, _ = open_mode_allowed(from_dict({}), "localhost")
    assert ok is True
