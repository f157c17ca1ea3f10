"""The gateway's own commands as a user runs them: serve refusing bad setups, chat, config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from owstack.cli import app
from procs import Proc

OWSTACK = [sys.executable, "-m", "owstack"]


def run(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OWSTACK, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_serve_refuses_a_model_file_whose_digest_does_not_match(tmp_path: Path) -> None:
    config = tmp_path / "owstack.yaml"
    bad = "0" * 64
    config.write_text(
        yaml.safe_dump({"backends": {"edge": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "sha256": bad}}})
    )
    result = run("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    message = result.stderr
    assert "backends.edge.model:" in message and "SmolLM2-135M-Instruct.Q4_1.gguf" in message
    assert bad in message and "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in message
    assert "Traceback" not in message


def test_serve_refuses_to_listen_off_loopback_without_keys(tmp_path: Path) -> None:
    result = run("serve", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "0.0.0.0" in result.stderr and "key" in result.stderr.lower()


def test_serve_reports_a_bad_config_file(tmp_path: Path) -> None:
    config = tmp_path / "owstack.yaml"
    config.write_text("backends:\n  a: {engine: vllm, model: m}\n")
    result = run("serve", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "backends.a" in result.stderr and "url" in result.stderr and "Traceback" not in result.stderr


def test_chat_against_a_running_gateway(embedded_gateway: Proc) -> None:
    result = run("chat", "Say hello.", "--url", embedded_gateway.base_url, "--max-tokens", "8", "-v")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "layer" in result.stderr and "edge-local" in result.stderr
    plain = run(
        "chat", "Say hello.", "--url", embedded_gateway.base_url, "--max-tokens", "8", "--no-stream", "-m", "edge"
    )
    assert plain.returncode == 0 and plain.stdout.strip()
    missing = run("chat", "hi", "-m", "nope", "--url", embedded_gateway.base_url)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def test_chat_without_a_gateway_says_how_to_start_one() -> None:
    result = run("chat", "hi", "--url", "http://127.0.0.1:9/v1")
    assert result.returncode == 1 and "owstack serve" in result.stderr


def test_config_check_show_schema(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "storage": {"url": "postgresql://me:hunter2@db/owstack"},
                "backends": {"v": {"engine": "vllm", "url": "http://gpu:8000/v1", "model": "m"}},
            }
        )
    )
    ok = runner.invoke(app, ["config", "check", str(good)])
    assert ok.exit_code == 0 and "1 backend(s)" in ok.output
    shown: Any = yaml.safe_load(runner.invoke(app, ["config", "show", str(good)]).output)
    assert shown["storage"]["url"] == "postgresql://me:***@db/owstack"
    assert shown["routing"]["breaker"]["failure_threshold"] == 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {"backends": {"o": {"engine": "openai", "url": "https://x/v1", "model": "m", "api_key": "env.NOPE_KEY_X"}}}
        )
    )
    missing = runner.invoke(app, ["config", "check", str(bad)])
    assert missing.exit_code == 2 and "backends.o.api_key: environment variable NOPE_KEY_X is not set" in missing.output
    schema = runner.invoke(app, ["config", "schema"])
    assert '"backends"' in schema.output and '"additionalProperties": false' in schema.output
