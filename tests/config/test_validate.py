"""One validator for `owstack config check`, `owstack serve` and the app factory: what the schema cannot
know (catalog, environment, listening address) is checked here, every problem named by its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.config.validate import validate
from owstack.errors import ConfigError

VLLM = {"engine": "vllm", "url": "http://gpu-1:8001/v1", "model": "m"}


def problems(raw: dict[str, Any], **where: Any) -> str:
    with pytest.raises(ConfigError) as info:
        validate(from_dict(raw), **where)
    return str(info.value)


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"backends": {"a": {**VLLM, "hardware": "2xA100"}}}, ["backends.a.hardware:", "'A100'", "8xH100"]),
        ({"counterfactual": {"edge": "gpt-4o"}}, ["counterfactual.edge:", "'gpt-4o'", "gpt-5.4"]),
        ({"backends": {"a": {**VLLM, "api_key": "env.OWS_TEST_UNSET_KEY"}}}, ["backends.a.api_key:", "export"]),
        ({"audit": {"master_key": "env.OWS_TEST_UNSET_MASTER"}}, ["audit.master_key:", "OWS_TEST_UNSET_MASTER"]),
        ({"backends": {"a": {**VLLM, "url": "gpu-1:8001/v1"}}}, ["backends.a.url:", "not an http(s) URL"]),
        ({"backends": {"a": {**VLLM, "url": "http://gpu-1:99999/v1"}}}, ["backends.a.url:", "valid port"]),
        ({"backends": {"a": {**VLLM, "catalog": "gpt-7"}}}, ["backends.a.catalog:", "owstack models"]),
        ({"backends": {"a": {**VLLM, "proprietary": True, "model": "o9"}}}, ["backends.a.model:", "'o9'"]),
        ({"backends": {"e": {"engine": "llamacpp", "model": "nope"}}}, ["backends.e.model:", "model_path"]),
        (
            {"backends": {"e": {"engine": "llamacpp", "model": "m", "model_path": "/nonexistent/m.gguf"}}},
            ["backends.e.model_path:", "/nonexistent/m.gguf does not exist"],
        ),
        ({"storage": {"url": "mysql://h/db"}}, ["storage.url:", "unsupported database"]),
        ({"audit": {"directory": "/tmp/a", "keys_directory": "/tmp/a/keys"}}, ["audit.keys_directory:"]),
    ],
)
def test_each_problem_names_its_field_and_the_fix(raw: dict[str, Any], fragments: list[str]) -> None:
    message = problems(raw)
    for fragment in fragments:
        assert fragment in message, message


def test_all_problems_are_reported_together() -> None:
    message = problems(
        {"backends": {"a": {**VLLM, "hardware": "2xA100", "api_key": "env.OWS_TEST_UNSET_KEY"}}, "counterfactual": {}}
    )
    assert "backends.a.hardware" in message and "backends.a.api_key" in message
    assert message.count("\n") == 2  # the heading and one line per problem


def test_audit_key_material_must_decode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OWS_TEST_MASTER", "not-a-key")
    assert "audit.master_key: not hex or base64" in problems({"audit": {"master_key": "env.OWS_TEST_MASTER"}})
    monkeypatch.setenv("OWS_TEST_MASTER", "ab" * 32)
    validate(from_dict({"audit": {"master_key": "env.OWS_TEST_MASTER"}}))
    shared = tmp_path / "signing.key"
    shared.write_text("ab" * 32)
    shared.chmod(0o644)
    assert "readable by others" in problems({"audit": {"signing_key": str(shared)}})


def test_a_secret_that_is_set_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWS_TEST_KEY", "sk-1")
    checked = validate(from_dict({"backends": {"a": {**VLLM, "api_key": "env.OWS_TEST_KEY", "hardware": "8xH100"}}}))
    assert checked.port == 8000 and checked.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://127.0.0.1:8000/v1", "127.0.0.1", 8000),
        ("http://localhost:8000/v1", "127.0.0.1", 8000),
        ("http://[::1]:9000/v1", "localhost", 9000),
        ("http://127.0.0.1:80/v1", "0.0.0.0", 80),
        ("http://gpu-9:8000/v1", "gpu-9", 8000),
    ],
)
def test_a_backend_at_the_gateways_own_address_is_refused(url: str, host: str, port: int) -> None:
    raw = {"backends": {"loop": {**VLLM, "url": url}}, "tenants": {"t": {}}}
    message = problems(raw, host=host, port=port)
    assert "backends.loop.url:" in message and "call itself" in message and "owstack recipe" in message


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://127.0.0.1:8001/v1", "127.0.0.1", 8000),  # another port on this machine
        ("http://gpu-1:8000/v1", "127.0.0.1", 8000),  # the same port on another machine
        ("http://127.0.0.1:8000/v1", "127.0.0.1", 0),  # the gateway takes a free port
    ],
)
def test_other_addresses_pass(url: str, host: str, port: int) -> None:
    validate(from_dict({"backends": {"v": {**VLLM, "url": url}}}), host=host, port=port)


def test_the_listening_address_must_exist() -> None:
    assert "server.host: 'no such host!' is not an address" in problems({"tenants": {"t": {}}}, host="no such host!")
    for host in ("127.0.0.1", "::1", "localhost", "0.0.0.0"):
        validate(from_dict({"tenants": {"t": {}}}), host=host)


def test_off_loopback_without_tenants_is_refused_and_open_mode_is_announced() -> None:
    assert "server.host:" in problems({}, host="0.0.0.0")
    notes = validate(from_dict({}), host="127.0.0.1").notes
    assert len(notes) == 1 and "OPEN" in notes[0]
    assert validate(from_dict({"tenants": {"t": {}}}), host="0.0.0.0").notes == ()


def test_a_model_file_that_does_not_match_its_pin_names_both_digests(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF not really")
    message = problems(
        {"backends": {"e": {"engine": "llamacpp", "model": "m", "model_path": str(model), "sha256": "0" * 64}}}
    )
    assert "backends.e.model_path:" in message and "0" * 64 in message and "sha256 mismatch" in message


@pytest.mark.parametrize(
    ("server", "where", "fragments"),
    [
        ({"probe_port": 8000}, {}, ["server.probe_port: 8000", "main listener's port"]),
        ({"probe_port": 9000}, {"port": 9000}, ["server.probe_port: 9000"]),
        ({"probe_port": 9001, "probe_host": "no such host.invalid"}, {}, ["server.probe_host:"]),
    ],
)
def test_the_probe_listener_is_checked(server: dict[str, Any], where: dict[str, Any], fragments: list[str]) -> None:
    text = problems({"backends": {"a": VLLM}, "server": server}, **where)
    assert all(fragment in text for fragment in fragments), text


@pytest.mark.parametrize(
    ("server", "fragment"),
    [
        ({"trusted_proxies": ["10.0.0.0/8", "nope"]}, "'nope' is not an IP address"),
        ({"proxy_protocol": True}, "proxy_protocol: true needs server.trusted_proxies"),
    ],
)
def test_trusted_proxies_are_checked(server: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict({"backends": {"a": VLLM}, "server": server})
    assert fragment in str(info.value)


def test_probe_port_and_trusted_proxies_that_pass() -> None:
    server = {"probe_port": 8001, "trusted_proxies": ["10.1.2.3/8", "::1"], "proxy_protocol": True}
    validate(from_dict({"backends": {"a": VLLM}, "server": server}))
