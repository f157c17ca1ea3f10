"""`owstack recipe` and `owstack models`, through the root app and once as a real subprocess."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from owstack.catalog.recipes import recipe

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    from owstack.cli import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def section(text: str, title: str) -> str:
    """The lines after a `## title` heading, up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {title}")) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end])


def test_recipe_prints_the_command_then_the_backend_entry() -> None:
    code, out, _ = run("recipe", "nemotron-3-super", "--engine", "vllm", "--gpus", "8xH100")
    assert code == 0
    assert out.startswith("# Serve nemotron-3-super with vllm (FP8 on 8xH100)")
    assert out.index("## Serve command") < out.index("## owstack backend entry")
    command = section(out, "Serve command").replace("\\\n", " ")
    assert shlex.split(command) == recipe("nemotron-3-super", "vllm", "8xH100").command
    backend = yaml.safe_load(section(out, "owstack backend entry"))
    assert backend["backends"]["nemotron-3-super-vllm"]["hardware"] == "8xH100"
    assert "! NVIDIA Nemotron 3 Super 120B-A12B FP8: published baseline 4xH200" in out


def test_recipe_ollama_shows_the_pull_step() -> None:
    code, out, _ = run("recipe", "qwen3.5:9b", "-e", "ollama")
    assert code == 0
    assert section(out, "Setup").strip() == "ollama pull qwen3.5:9b"
    assert section(out, "Serve command").strip() == "OLLAMA_HOST=127.0.0.1:11434 ollama serve"
    assert "url: http://127.0.0.1:11434/v1" in out


def test_recipe_json() -> None:
    code, out, _ = run("recipe", "mistral-small-4", "--engine", "vllm", "--gpus", "1xB200", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["variant"] == "NVFP4" and "TRITON_MLA" in data["command"]
    assert data["backend_entry"]["model"] == "mistralai/Mistral-Small-4-119B-2603-NVFP4"
    assert yaml.safe_load(data["backend_yaml"])["backends"]["mistral-small-4-vllm"] == data["backend_entry"]
    assert shlex.split(data["shell"]) == data["command"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recipe", "mistral-small-4", "--engine", "ollama"], "error: --engine ollama: Mistral Small 4"),
        (
            ["recipe", "qwen3.5-9b", "--engine", "vllm", "--gpus", "8xA100"],
            "error: --gpus: unknown GPU 'A100'",
        ),
        (["recipe", "qwen3.5-9b", "--engine", "tgi"], "error: --engine: unknown engine 'tgi'; choose from"),
        (
            ["recipe", "nemotron-3-super", "--engine", "vllm", "--gpus", "1xH100"],
            "error: --gpus 1xH100: NVIDIA",
        ),
        (["models", "gpt-5.4"], "error: model: unknown model 'gpt-5.4'; known models: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_models_list_and_show() -> None:
    code, out, _ = run("models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["id", "layer", "params"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "120B/12B" in rows["nemotron-3-super"] and "(not OSI)" in rows["nemotron-3-super"]
    assert "text+image+video" in rows["qwen3.5-0.8b"] and "enable_thinking (default off)" in rows["qwen3.5-0.8b"]
    assert "enable_thinking (default on)" in rows["qwen3.5-9b"]
    code, out, _ = run("models", "NVIDIA/NVIDIA-Nemotron-3-Super-120B-A12B-NVFP4")
    assert code == 0 and "(nemotron-3-super)" in out and "120.6B / 12.7B" in out and "<think> ... </think>" in out


def test_models_json() -> None:
    code, out, _ = run("models", "--json")
    assert code == 0
    assert [m["id"] for m in json.loads(out)][:2] == ["smollm2-135m-instruct", "nemotron-3-super"]
    code, out, _ = run("models", "qwen3.5-4b", "--json")
    card = json.loads(out)
    assert card["reasoning"]["default_on"] is True and card["context"] == 262144


def test_real_subprocess() -> None:
    exe = Path(sys.executable).parent / "owstack"
    done = subprocess.run(
        [str(exe), "recipe", "smollm2", "--engine", "llamacpp", "--port", "8089", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["alternatives"]["llama-cpp-python"][:3] == ["python", "-m", "llama_cpp.server"]
    assert data["backend_entry"]["url"] == "http://127.0.0.1:8089/v1"
    bad = subprocess.run([str(exe), "recipe", "smollm2", "--engine", "ollama"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --engine ollama:") and "Traceback" not in bad.stderr


def test_recipe_warns_when_the_chosen_port_is_the_gateways() -> None:
    code, out, err = run("recipe", "qwen3.5-9b", "--engine", "vllm", "--port", "8000")
    assert code == 0 and "## Warnings" in out and "gateway's own (127.0.0.1:8000)" in out
    code, out, err = run("recipe", "qwen3.5-9b", "--engine", "vllm", "--gateway", "127.0.0.1:8001", "--json")
    assert code == 0 and json.loads(out)["backend_entry"]["url"] == "http://127.0.0.1:8002/v1" and err == ""
    code, out, err = run("recipe", "qwen3.5-9b", "--engine", "vllm", "--gateway", "nowhere")
    assert code == 2 and "--gateway: 'nowhere' is not HOST:PORT" in err
