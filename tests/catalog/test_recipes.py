"""Serving recipes: published flags, GPU parsing and fit, impossible combinations, backend entries."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path

import pytest
import yaml

from owstack.catalog.fit import parse_gpus
from owstack.catalog.models import model_card, model_cards
from owstack.catalog.recipes import Recipe, engines, recipe, recipes_data
from owstack.errors import ConfigError

NEMOTRON_VLLM = (
    "--trust-remote-code --kv-cache-dtype fp8 --mamba-ssm-cache-dtype float16 --reasoning-parser nemotron_v3 "
    "--enable-auto-tool-choice --tool-call-parser qwen3_coder"
)
MISTRAL_VLLM = (
    "--max-model-len 262144 --attention-backend FLASH_ATTN_MLA --tool-call-parser mistral "
    "--enable-auto-tool-choice --reasoning-parser mistral --max_num_batched_tokens 16384 --max_num_seqs 128 "
    "--gpu_memory_utilization 0.8"
)
QWEN_VLLM = (
    "--tensor-parallel-size 1 --max-model-len 262144 --reasoning-parser qwen3 --enable-auto-tool-choice "
    "--tool-call-parser qwen3_coder"
)


def flags(r: Recipe) -> str:
    return " ".join(r.command)


def working_combinations() -> list[tuple[str, str]]:
    data = recipes_data()
    return [(m, e) for m, entry in data.models.items() for e in entry.engines]


# ---- Nemotron 3 Super ---------------------------------------------------------------------------------


def test_nemotron_vllm_8xh100_uses_fp8_tp8_and_expert_parallel() -> None:
    r = recipe("nemotron-3-super", "vllm", "8xH100")
    assert r.command[:3] == ["vllm", "serve", "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"]
    assert NEMOTRON_VLLM in flags(r)
    assert "--tensor-parallel-size 8 --enable-expert-parallel" in flags(r)
    assert "--host 127.0.0.1 --port 8001" in flags(r)  # vLLM's own 8000 is the gateway's default
    assert r.variant == "FP8" and r.gpus == "8xH100"
    assert r.warnings == [
        "NVIDIA Nemotron 3 Super 120B-A12B FP8: published baseline 4xH200; 8xH100 chosen: uses tensor parallel 8"
    ]
    assert r.fit == {"weights_gb": 120.6, "need_gb": 136.6, "usable_gb": 576.0}
    assert "--speculative-config" not in r.command  # MTP is an option, listed in the notes
    assert any("--option mtp" in n for n in r.notes)
    assert any("super_v3_reasoning_parser.py" in n for n in r.notes)


def test_nemotron_defaults_to_the_published_baseline() -> None:
    r = recipe("nemotron-3-super", "vllm")
    assert r.gpus == "4xH200" and "--tensor-parallel-size 4 --enable-expert-parallel" in flags(r)
    assert r.warnings == [] and any("baseline 4xH200 is used" in n for n in r.notes)


def test_nemotron_mtp_option_adds_the_speculative_config() -> None:
    r = recipe("nemotron-3-super", "vllm", "4xH100", options=["mtp"])
    i = r.command.index("--speculative-config")
    assert json.loads(r.command[i + 1]) == {"method": "nemotron_h_mtp", "num_speculative_tokens": 5}
    assert shlex.split(r.shell) == r.command  # the JSON survives quoting
    with pytest.raises(ConfigError, match="unknown option 'eagle'; options: mtp, long-context"):
        recipe("nemotron-3-super", "vllm", "4xH100", options=["eagle"])


def test_nemotron_long_context_option_sets_env_and_flag() -> None:
    r = recipe("nemotron-3-super", "vllm", "4xH200", options=["long-context"])
    assert r.env == {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}
    assert "--max-model-len 1048576" in flags(r)
    assert r.shell.startswith("VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 vllm serve ")


@pytest.mark.parametrize(
    ("gpus", "variant"),
    [("2xH100", "FP8"), ("1xB200", "NVFP4"), ("4xB200", "NVFP4"), ("4xH100", "FP8"), ("8xH200", "FP8")],
)
def test_nemotron_variant_follows_the_gpu(gpus: str, variant: str) -> None:
    assert recipe("nemotron-3-super", "vllm", gpus).variant == variant


def test_nemotron_explicit_variant_is_checked_for_fit_and_architecture() -> None:
    assert recipe("nemotron-3-super", "vllm", "4xH100", variant="BF16").variant == "BF16"
    with pytest.raises(ConfigError, match=r"BF16 needs 257\.2 GB"):
        recipe("nemotron-3-super", "vllm", "2xH100", variant="bf16")
    with pytest.raises(ConfigError, match="NVFP4 needs a blackwell or rubin GPU"):
        recipe("nemotron-3-super", "vllm", "8xH100", variant="NVFP4")
    with pytest.raises(ConfigError, match="no variant 'INT4'"):
        recipe("nemotron-3-super", "vllm", "8xH100", variant="INT4")


def test_120b_on_one_h100_does_not_fit() -> None:
    with pytest.raises(ConfigError) as err:
        recipe("nemotron-3-super", "vllm", "1xH100")
    msg = str(err.value)
    assert msg.startswith("--gpus 1xH100: NVIDIA Nemotron 3 Super 120B-A12B does not fit")
    assert "FP8 needs 136.6 GB (120.6 weights + 16.0 KV headroom), 1xH100 gives 72.0 GB" in msg
    assert "NVFP4 needs a blackwell or rubin GPU" in msg


def test_nemotron_sglang() -> None:
    r = recipe("nemotron-3-super", "sglang", "8xH200")
    assert r.command[:5] == ["python", "-m", "sglang.launch_server", "--model-path", r.backend_entry["model"]]
    assert "--tool-call-parser qwen3_coder --reasoning-parser nemotron_3 --tp 8" in flags(r)
    assert r.backend_entry["url"] == "http://127.0.0.1:30000/v1" and r.backend_entry["engine"] == "sglang"
    with pytest.raises(ConfigError, match="tensor parallel over 1, 2, 4, 8 GPUs"):
        recipe("nemotron-3-super", "sglang", "3xH200")


def test_nemotron_ollama_checks_the_tag_size_against_gpus() -> None:
    r = recipe("nemotron-3-super", "ollama")
    assert r.setup == [["ollama", "pull", "nemotron-3-super:120b"]] and r.command == ["ollama", "serve"]
    assert any("about 89.0 GB" in n for n in r.notes)
    assert recipe("nemotron-3-super", "ollama", "2xH100").gpus == "2xH100"
    with pytest.raises(ConfigError, match=r"does not fit: needs 89\.0 GB"):
        recipe("nemotron-3-super", "ollama", "1xH100")


# ---- Mistral Small 4 ----------------------------------------------------------------------------------


def test_mistral_vllm_baseline_and_8xh100_warning() -> None:
    base = recipe("mistral-small-4", "vllm")
    assert base.gpus == "2xH200" and base.variant == "FP8"
    assert MISTRAL_VLLM in flags(base) and "--tensor-parallel-size 2" in flags(base)
    r = recipe("mistral-small-4", "vllm", "8xH100")
    assert "--tensor-parallel-size 8" in flags(r)
    assert r.warnings == [
        "Mistral Small 4 119B (2603) FP8: published baseline 2xH200; 8xH100 chosen: uses tensor parallel 8"
    ]


def test_mistral_nvfp4_uses_triton_mla() -> None:
    r = recipe("mistral-small-4", "vllm", "1xB200")
    assert r.variant == "NVFP4" and r.command[2] == "mistralai/Mistral-Small-4-119B-2603-NVFP4"
    assert "--attention-backend TRITON_MLA" in flags(r) and "FLASH_ATTN_MLA" not in flags(r)
    assert "less memory than the baseline" in r.warnings[0]


def test_mistral_impossible_combinations() -> None:
    with pytest.raises(ConfigError, match="no official Ollama tag for Mistral Small 4"):
        recipe("mistral-small-4", "ollama")
    with pytest.raises(ConfigError, match=r"--engine sglang: .*published recipes are for vLLM only"):
        recipe("mistral-small-4", "sglang", "2xH200")
    with pytest.raises(ConfigError, match=r"FP8 needs 151.0 GB .* 2xH100 gives 128.0 GB \(2 x 80 GB x 0.8\)"):
        recipe("mistral-small-4", "vllm", "2xH100")


def test_fit_uses_the_memory_fraction_the_command_sets() -> None:
    for model_id, e in working_combinations():
        me = recipes_data().models[model_id].engines[e]  # type: ignore[index]
        if "--gpu_memory_utilization" in me.flags:
            assert float(me.flags[me.flags.index("--gpu_memory_utilization") + 1]) == me.memory_fraction


# ---- Qwen3.5 and SmolLM2 ------------------------------------------------------------------------------


def test_qwen_vllm_single_gpu_and_data_parallel() -> None:
    r = recipe("qwen3.5-9b", "vllm")
    assert r.command[2] == "Qwen/Qwen3.5-9B" and QWEN_VLLM in flags(r) and r.gpus == "1xH100"
    assert "--data-parallel-size" not in flags(r)
    r8 = recipe("qwen3.5-9b", "vllm", "8xH100", options=["language-model-only"])
    assert "--data-parallel-size 8" in flags(r8) and "--tensor-parallel-size 1" in flags(r8)
    assert r8.command[-1] == "--language-model-only"
    s = recipe("Qwen/Qwen3.5-4B", "sglang", "2xH100")
    assert "--reasoning-parser qwen3 --tool-call-parser qwen3_coder --dp 2" in flags(s)


@pytest.mark.parametrize("size", ["0.8b", "2b", "4b", "9b"])
def test_qwen_ollama(size: str) -> None:
    r = recipe(f"qwen3.5-{size}", "ollama")
    assert r.setup == [["ollama", "pull", f"qwen3.5:{size}"]]
    assert r.command == ["ollama", "serve"] and r.env == {"OLLAMA_HOST": "127.0.0.1:11434"}
    assert r.shell == "OLLAMA_HOST=127.0.0.1:11434 ollama serve"
    assert r.backend_entry == {
        "engine": "ollama",
        "url": "http://127.0.0.1:11434/v1",
        "model": f"qwen3.5:{size}",
        "catalog": f"qwen3.5-{size}",
        "jurisdiction": "local",
    }


def test_qwen_llamacpp_needs_a_file() -> None:
    r = recipe("qwen3.5-9b", "llamacpp")
    assert r.command[:3] == ["llama-server", "-m", "/path/to/qwen3.5-9b.gguf"]
    assert r.warnings == ["no GGUF file is pinned in the catalog for qwen3.5-9b: pass --file PATH"]
    r2 = recipe("qwen3.5-9b", "llamacpp", file="/models/q.gguf", port=9001)
    assert r2.command[2] == "/models/q.gguf" and r2.warnings == [] and r2.variant == "q.gguf"
    assert r2.backend_entry["url"] == "http://127.0.0.1:9001/v1"


def test_smollm2_llamacpp_uses_the_wheel_file() -> None:
    r = recipe("smollm2", "llamacpp")
    path = Path(r.command[2])
    assert r.command[:2] == ["llama-server", "-m"] and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file() and "--jinja" in r.command
    assert r.command[r.command.index("--alias") + 1] == "smollm2-135m-instruct"
    alt = r.alternatives["llama-cpp-python"]
    assert alt[:5] == ["python", "-m", "llama_cpp.server", "--model", str(path)]
    assert r.backend_entry["engine"] == "llamacpp-server" and r.backend_entry["model"] == "smollm2-135m-instruct"
    with pytest.raises(ConfigError, match="no Ollama tag for SmolLM2"):
        recipe("smollm2", "ollama")


# ---- errors, GPUs, data quality -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "vllm", None), "model: unknown model 'nope'; known models: smollm2-135m-instruct"),
        (
            ("qwen3.5-9b", "tgi", None),
            "--engine: unknown engine 'tgi'; choose from vllm, sglang, ollama, llamacpp",
        ),
        (("qwen3.5-9b", "vllm", "8xA100"), "--gpus: unknown GPU 'A100'; known GPUs: H100, H200"),
        (("qwen3.5-9b", "vllm", "eight H100"), "--gpus: 'eight H100' is not COUNTxGPU, e.g. 8xH100"),
        (("qwen3.5-9b", "vllm", "0xH100"), "--gpus: '0xH100': the count must be 1 to 72"),
    ],
)
def test_bad_input_names_the_option(args: tuple[str, str, str | None], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        recipe(*args)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("spec", "label", "total"),
    [
        ("8xH100", "8xH100", 640),
        ("2x H200", "2xH200", 282),
        ("1xb200", "1xB200", 180),
        ("4XH200", "4xH200", 564),
        ("2xH100-SXM", "2xH100", 160),
        ("1xrtx5090", "1xRTX5090", 32),
    ],
)
def test_parse_gpus(spec: str, label: str, total: float) -> None:
    g = parse_gpus(spec, recipes_data().gpus)
    assert (g.label, g.total_gb) == (label, total)


@pytest.mark.parametrize(("model_id", "engine"), working_combinations())
def test_every_recipe_yields_a_valid_owstack_backend(model_id: str, engine: str) -> None:
    from owstack.config.schema import BackendSection, ConfigFile

    r = recipe(model_id, engine)
    BackendSection.model_validate(r.backend_entry)
    parsed = yaml.safe_load(r.backend_yaml())
    assert parsed == {"backends": {r.backend_name: r.backend_entry}}
    assert r.backend_name in ConfigFile.model_validate(parsed).backends
    assert r.backend_entry["catalog"] == model_id
    prefix = [f"{k}={v}" for k, v in r.env.items()]
    assert shlex.split(r.shell) == prefix + r.command
    assert r.source and dt.date.fromisoformat(r.date)
    json.dumps(r.to_dict())


def test_every_model_and_engine_has_a_recipe_or_a_reason() -> None:
    data = recipes_data()
    assert set(data.models) == {c.id for c in model_cards()}
    for model_id, entry in data.models.items():
        assert set(entry.engines) | set(entry.unsupported) == set(engines()), model_id
        assert not set(entry.engines) & set(entry.unsupported), model_id
        for e, me in entry.engines.items():
            assert me.source.strip() and me.date, (model_id, e)
            card = model_card(model_id)
            for v in [*me.variant_vars, *(n for order in me.variant_order.values() for n in order)]:
                card.variant(v)  # every variant named in recipes.yaml exists
    for gpu in data.gpus.values():
        assert gpu.source and gpu.date
    for eng in data.engines.values():
        assert eng.source and eng.date


def test_user_recipes_file_overrides_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "recipes.yaml"
    user.write_text(
        "models:\n  qwen3.5-9b:\n    engines:\n      vllm:\n        baseline_gpus: 1xH200\n", encoding="utf-8"
    )
    monkeypatch.setenv("OWSTACK_RECIPES_FILE", str(user))
    r = recipe("qwen3.5-9b", "vllm")
    assert r.gpus == "1xH200" and QWEN_VLLM in flags(r)  # other fields kept
    user.write_text("models:\n  qwen3.5-9b:\n    engines:\n      vllm:\n        parallel: pipeline\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"recipes\.yaml \+ .*: models\.qwen3\.5-9b\.engines\.vllm\.parallel"):
        recipe("qwen3.5-9b", "vllm")


def test_host_beyond_loopback_warns_and_the_url_stays_usable() -> None:
    r = recipe("qwen3.5-9b", "vllm", host="0.0.0.0")
    assert "--host 0.0.0.0" in flags(r) and r.backend_entry["url"] == "http://127.0.0.1:8001/v1"
    assert "every interface" in r.warnings[0]
    r = recipe("qwen3.5-9b", "vllm", host="10.0.0.5", port=9000)
    assert r.backend_entry["url"] == "http://10.0.0.5:9000/v1" and "beyond loopback" in r.warnings[0]
    assert recipe("qwen3.5-9b", "vllm").warnings == []


def test_mistral_fp8_fits_the_other_published_setups() -> None:
    for gpus in ("4xH100", "2xB200", "2xH200"):
        assert recipe("mistral-small-4", "vllm", gpus).variant == "FP8", gpus


# ---- ports that keep off the gateway ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["vllm", "sglang", "llamacpp"])
def test_default_ports_never_point_the_gateway_at_itself(engine: str) -> None:
    from owstack.config.load import from_dict
    from owstack.config.validate import validate

    model = "qwen3.5-9b" if engine != "llamacpp" else "smollm2-135m-instruct"
    r = recipe(model, engine, gateway=("127.0.0.1", 8000))
    validate(from_dict({"backends": {"b": r.backend_entry}}))  # the pasted entry passes `owstack config check`
    assert not any("gateway" in w for w in r.warnings)


def test_the_engine_port_moves_off_the_gateways() -> None:
    r = recipe("qwen3.5-9b", "vllm", gateway=("127.0.0.1", 8001))
    assert "--port 8002" in flags(r) and r.backend_entry["url"] == "http://127.0.0.1:8002/v1"
    r = recipe("qwen3.5-9b", "sglang", gateway=("0.0.0.0", 30000))
    assert r.backend_entry["url"] == "http://127.0.0.1:30001/v1"
    r = recipe("qwen3.5-9b", "vllm", host="10.0.0.5", gateway=("127.0.0.1", 8001))
    assert r.backend_entry["url"] == "http://10.0.0.5:8001/v1"  # another machine: its own port is free


def test_a_chosen_port_on_the_gateway_is_a_warning() -> None:
    r = recipe("qwen3.5-9b", "vllm", port=8000, gateway=("127.0.0.1", 8000))
    assert r.backend_entry["url"] == "http://127.0.0.1:8000/v1"
    assert any("gateway's own (127.0.0.1:8000)" in w for w in r.warnings)
