"""Fixtures for the fine-tuning tests: a tiny random Llama saved as a Hugging Face folder (built in-test),
SmolLM2 dequantised once per session from the embedded GGUF, and helpers that write recipes and data."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_folder(dest: Path) -> Path:
    """A 2-layer Llama (hidden 32) with a character tokenizer and a ChatML template, saved to `dest`."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(string.printable) - set("\t\r\x0b\x0c")))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<pad>", unk_token="<unk>", bos_token="<|im_start|>"
    )
    tok.chat_template = CHATML
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tok),
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("trl")
    return tiny_folder(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OWSTACK_CACHE_DIR for the session: SmolLM2 is dequantised into it once and shared by the tests."""
    return tmp_path_factory.mktemp("owstack-cache")


@pytest.fixture
def owstack_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OWSTACK_CACHE_DIR", str(cache_dir))
    return cache_dir


def parity_rows(n: int = 24) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"n={i % 10}"},
                {"role": "assistant", "content": "even" if i % 2 == 0 else "odd"},
            ]
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8")
    return path


def write_recipe(folder: Path, base: Path | str, **over: Any) -> Path:
    """A small recipe in `folder` training on `train.jsonl` there (written with parity rows when missing)."""
    if not (folder / "train.jsonl").exists():
        write_jsonl(folder / "train.jsonl", parity_rows())
    recipe: dict[str, Any] = {
        "name": "tiny-run",
        "base": str(base),
        "data": {"train": "train.jsonl", "eval_split": 0.25},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]},
        "training": {
            "max_steps": 4,
            "batch_size": 4,
            "lr": 0.01,
            "checkpoint_every": 2,
            "max_length": 64,
            "threads": 1,
        },
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), "utf-8")
    return path
