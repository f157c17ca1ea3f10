"""`owstack keys create|list|revoke` and `owstack residency check`, through CliRunner and once for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owstack.tenancy.keys import KeyStore

KEY = re.compile(r"^ows-([0-9a-f]{12})-([A-Za-z0-9_-]{43})$")
runner = CliRunner()


def invoke(app: Any, *args: str | Path) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"OWSTACK_CONFIG": None, "COLUMNS": "160"})


@pytest.fixture
def cfg(write_config: Callable[..., Path], config_data: dict[str, Any], sqlite_url: str) -> Path:
    return write_config(config_data, sqlite_url)


def create(app: Any, cfg: Path, *extra: str) -> tuple[str, str]:
    result = invoke(app, "keys", "create", "--config", cfg, *extra)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, "stdout carries the key alone"
    match = KEY.match(lines[0])
    assert match is not None
    return lines[0], match.group(1)


def test_create_prints_the_key_once_and_list_never_shows_it(cli_app: Any, cfg: Path, sqlite_url: str) -> None:
    key, key_id = create(cli_app, cfg, "--tenant", "acme-eu", "--layers", "coding,edge", "--expires", "30d")
    secret = key.split("-", 2)[2]
    assert KeyStore(sqlite_url).authenticate(key).key_id == key_id
    listed = invoke(cli_app, "keys", "list", "--config", cfg)
    assert listed.exit_code == 0
    assert key_id in listed.stdout and "acme-eu" in listed.stdout and "coding,edge" in listed.stdout
    assert "active" in listed.stdout
    as_json = invoke(cli_app, "keys", "list", "--config", cfg, "--json")
    rows = json.loads(as_json.stdout)
    assert [r["key_id"] for r in rows] == [key_id] and rows[0]["layers"] == ["coding", "edge"]
    for output in (listed.stdout + listed.stderr, as_json.stdout + as_json.stderr):
        assert secret not in output and secret[:12] not in output


def test_create_message_and_json(cli_app: Any, cfg: Path) -> None:
    result = invoke(cli_app, "keys", "create", "--config", cfg, "-t", "fr-only", "--label", "ci", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert KEY.match(data["key"]) and data["tenant"] == "fr-only" and data["label"] == "ci"
    assert data["expires_at"] is None and data["status"] == "active"
    plain = invoke(cli_app, "keys", "create", "--config", cfg, "-t", "acme-eu", "--expires", "2030-01-01")
    assert "layers: all layers; expires: 2030-01-01T00:00:00+00:00" in plain.stderr
    assert "only time the key is shown" in plain.stderr


def test_create_warns_about_layers_without_a_backend(cli_app: Any, cfg: Path) -> None:
    result = invoke(cli_app, "keys", "create", "--config", cfg, "-t", "us-prop")
    assert result.exit_code == 0
    assert "warning: tenant 'us-prop': layer 'edge' has no backend inside us" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-t", "nobody"],
            "error: --tenant: unknown tenant 'nobody'; configured tenants: acme-eu, fr-only, us-prop",
        ),
        (["-t", "acme-eu", "--layers", "coding,vision"], "error: --layers: unknown layer 'vision'"),
        (["-t", "fr-only", "--layers", "edge"], "error: --layers: tenant 'fr-only' may not use layer 'edge'"),
        (["-t", "acme-eu", "--expires", "soon"], "error: --expires: 'soon' is not a duration"),
        (["-t", "acme-eu", "--expires", "2001-01-01"], "error: --expires: '2001-01-01' is in the past"),
        (["-t", "acme-eu", "--label", "x" * 201], "error: --label: at most 200 printable characters"),
    ],
)
def test_create_usage_errors(cli_app: Any, cfg: Path, sqlite_url: str, args: list[str], message: str) -> None:
    result = invoke(cli_app, "keys", "create", "--config", cfg, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert KeyStore(sqlite_url).list() == []


def test_create_without_tenants_and_bad_configs(
    cli_app: Any,
    write_config: Callable[..., Path],
    config_data: dict[str, Any],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    del config_data["tenants"]
    result = invoke(cli_app, "keys", "create", "--config", write_config(config_data, sqlite_url), "-t", "x")
    assert result.exit_code == 2 and "no tenants are configured in" in result.stderr
    config_data["tenants"] = {"t": {"jurisdictions": ["EU"]}}
    result = invoke(cli_app, "keys", "create", "--config", write_config(config_data, sqlite_url), "-t", "t")
    assert result.exit_code == 2 and "tenants.t.jurisdictions: 'EU' is not a jurisdiction label" in result.stderr
    result = invoke(cli_app, "keys", "list", "--config", tmp_path / "missing.yaml")
    assert result.exit_code == 2 and "cannot read config file" in result.stderr


def test_unreachable_store(cli_app: Any, write_config: Callable[..., Path], config_data: dict[str, Any]) -> None:
    path = write_config(config_data, "postgresql://postgres:hunter2@127.0.0.1:1/owstack")
    result = invoke(cli_app, "keys", "list", "--config", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: cannot open the key store at postgresql://postgres:***@127.0.0.1:1/owstack: "
    )
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_revoke(cli_app: Any, cfg: Path, sqlite_url: str) -> None:
    key, key_id = create(cli_app, cfg, "-t", "acme-eu")
    result = invoke(cli_app, "keys", "revoke", key_id, "--config", cfg)
    assert result.exit_code == 0 and f"revoked key {key_id} (tenant 'acme-eu')" in result.stdout
    assert KeyStore(sqlite_url).list()[0].status() == "revoked"
    again = invoke(cli_app, "keys", "revoke", key_id, "--config", cfg)
    assert again.exit_code == 0 and f"key {key_id} was already revoked on" in again.stdout
    listed = invoke(cli_app, "keys", "list", "--config", cfg)
    assert "revoked" in listed.stdout
    unknown = invoke(cli_app, "keys", "revoke", "000000000000", "--config", cfg)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: no key with id 000000000000")
    whole = invoke(cli_app, "keys", "revoke", key, "--config", cfg)
    assert whole.exit_code == 2 and "not the whole key" in whole.stderr and key not in whole.stderr
    bad = invoke(cli_app, "keys", "revoke", "xyz", "--config", cfg)
    assert bad.exit_code == 2 and "is not 12 hex digits" in bad.stderr


def test_admin_events_reach_the_audit_hook(cli_app: Any, cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import owstack.compliance

    events: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(
        owstack.compliance, "audit_admin_event", lambda _c, kind, d: events.append((kind, d)), raising=False
    )
    key, key_id = create(cli_app, cfg, "-t", "acme-eu", "--layers", "edge")
    invoke(cli_app, "keys", "revoke", key_id, "--config", cfg)
    assert [kind for kind, _ in events] == ["key.created", "key.revoked"]
    assert events[0][1]["key_id"] == key_id and events[0][1]["layers"] == ["edge"]
    assert events[1][1]["revoked_at"] is not None
    assert key.split("-", 2)[2] not in json.dumps([d for _, d in events])


def test_a_key_the_audit_log_refused_is_revoked(
    cli_app: Any, cfg: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import owstack.compliance

    def refuse(*_args: Any) -> None:
        raise OSError("audit log not writable")

    monkeypatch.setattr(owstack.compliance, "audit_admin_event", refuse, raising=False)
    result = invoke(cli_app, "keys", "create", "--config", cfg, "-t", "acme-eu")
    assert result.exit_code == 1 and result.stdout == ""
    assert "the audit log did not record the new key (audit log not writable)" in result.stderr
    assert [r.status() for r in KeyStore(sqlite_url).list()] == ["revoked"]


def test_key_events_land_in_the_real_audit_log(cli_app: Any, cfg: Path, tmp_path: Path) -> None:
    pytest.importorskip("owstack.compliance.service")
    from owstack.compliance.export import records

    key, key_id = create(cli_app, cfg, "-t", "acme-eu", "--layers", "coding")
    assert invoke(cli_app, "keys", "revoke", key_id, "--config", cfg).exit_code == 0
    found = list(records(tmp_path / "audit", types=["admin.key"]))
    assert [r["type"] for r in found] == ["admin.key.created", "admin.key.revoked"]
    text = json.dumps(found)
    assert key_id in text and key.split("-", 2)[2] not in text


def test_residency_check(cli_app: Any, write_config: Callable[..., Path], config_data: dict[str, Any]) -> None:
    failing = invoke(cli_app, "residency", "check", "--config", write_config(config_data))
    assert failing.exit_code == 1
    assert "acme-eu: jurisdictions eu, local; proprietary APIs not allowed" in failing.stdout
    assert "coding      backends: vllm-eu-fr; fallback: edge-local" in failing.stdout
    assert "excluded openai-us: proprietary (us) and the tenant does not set allow_proprietary" not in failing.stdout
    assert "excluded openai-us: proprietary, jurisdiction us is outside eu, local" in failing.stdout
    assert "multimodal  not permitted for this tenant" in failing.stdout
    assert "edge        backends: -; fallback: -  <- NO BACKEND" in failing.stdout
    assert "error: 1 tenant layer(s) without a backend" in failing.stderr
    assert "tenant 'us-prop': layer 'edge' has no backend inside us" in failing.stderr
    as_json = invoke(cli_app, "residency", "check", "--config", write_config(config_data), "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["ok"] is False
    config_data["tenants"]["us-prop"]["jurisdictions"] = ["us", "local"]
    passing = invoke(cli_app, "residency", "check", "--config", write_config(config_data))
    assert passing.exit_code == 0 and "ok: every tenant reaches a backend" in passing.stdout


def test_real_subprocess(tmp_path: Path, write_config: Callable[..., Path], config_data: dict[str, Any]) -> None:
    """The installed `owstack` command: the key goes to stdout once; `keys list` never shows it."""
    exe = Path(sys.executable).with_name("owstack")
    config = write_config(config_data, f"sqlite:///{tmp_path / 'sub.db'}")
    env = {**os.environ, "OWSTACK_CONFIG": str(config)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)

    created = run("keys", "create", "--tenant", "acme-eu", "--expires", "30d")
    assert created.returncode == 0, created.stderr
    match = KEY.match(created.stdout.strip())
    assert match is not None and created.stdout.count("ows-") == 1
    listed = run("keys", "list")
    assert listed.returncode == 0 and match.group(1) in listed.stdout
    assert match.group(2) not in listed.stdout + listed.stderr
    unknown = run("keys", "create", "--tenant", "nobody")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --tenant: unknown tenant 'nobody'")
