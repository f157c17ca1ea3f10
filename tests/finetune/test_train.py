"""Training on a tiny random Llama (built in-test): SFT with LoRA and full weights, DPO, resume, artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from owstack.finetune import lineage
from owstack.finetune.errors import BaseModelError, FinetuneError
from owstack.finetune.recipe import load
from owstack.finetune.run import Interrupted, run

from .conftest import write_jsonl, write_recipe

pytestmark = pytest.mark.slow


def _adapter_tensors(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def test_sft_lora_writes_adapter_gguf_card_and_lineage(tmp_path: Path, tiny_base: Path) -> None:
    result = run(load(write_recipe(tmp_path, tiny_base)), progress=False)
    out = tmp_path / "runs" / "tiny-run"
    record = lineage.read(out)
    assert record == result.record
    assert record["kind"] == "lora-adapter" and record["method"] == "sft"
    assert record["base"]["kind"] == "hf" and len(record["base"]["sha256"]) == 64
    (source,) = record["data"]["sources"]
    assert (source["rows"], source["examples"]) == (24, 24)
    assert record["data"]["train_examples"] == 18 and record["data"]["eval_examples"] == 6
    assert record["metrics"]["global_step"] == 4 and "eval_loss" in record["metrics"]
    assert record["jurisdiction"] == {"compute": "local", "serving": ["local"]}
    assert record["run"]["by"].startswith("os-user:") and record["run"]["processes"] == 1
    assert record["recipe"]["lora"]["targets"] == ["q_proj", "v_proj"]
    # the GGUF adapter holds lora_a/lora_b for exactly the adapted layers, under llama.cpp names
    import gguf

    reader = gguf.GGUFReader(str(out / "adapter.gguf"))
    names = sorted(t.name for t in reader.tensors)
    assert names == sorted(f"blk.{i}.attn_{p}.weight.lora_{ab}" for i in (0, 1) for p in ("q", "v") for ab in "ab")
    assert str(reader.fields["adapter.type"].contents()) == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(8.0)
    from owstack.finetune.data import sha256_file

    assert record["artifacts"]["adapter_gguf"]["sha256"] == sha256_file(out / "adapter.gguf")
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    held = (out / "heldout.jsonl").read_text().splitlines()
    assert len(held) == 6 and (out / "heldout.jsonl").stat().st_mode & 0o077 == 0
    card = (out / "README.md").read_text()
    assert "base_model:" in card and source["sha256"][:16] in card and "TO BE COMPLETED BY THE PROVIDER" in card


def test_training_changes_the_model_towards_the_data(tmp_path: Path, tiny_base: Path) -> None:
    path = write_recipe(tmp_path, tiny_base, tuning="full", export={"gguf_adapter": False},
                        training={"max_steps": 12, "lr": 0.01})  # fmt: skip
    result = run(load(path), progress=False)
    losses = [json.loads(x)["loss"] for x in (result.plan.out / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(x)]  # fmt: skip
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_interrupt_then_resume_continues_from_the_checkpoint(tmp_path: Path, tiny_base: Path) -> None:
    straight = tmp_path / "a"
    straight.mkdir()
    run(load(write_recipe(straight, tiny_base)), progress=False)
    resumed = tmp_path / "b"
    resumed.mkdir()
    path = write_recipe(resumed, tiny_base)
    steps = iter(range(100))
    with pytest.raises(Interrupted) as info:
        run(load(path), progress=False, should_stop=lambda: next(steps) >= 1)
    assert info.value.step == 2 and info.value.path is not None and info.value.path.name == "checkpoint-2"
    with pytest.raises(FinetuneError, match="pass --resume"):
        run(load(path), progress=False)
    with pytest.raises(FinetuneError, match=r"recipe differs from the run's in lora"):
        run(load(path, ["lora.r=8"]), resume=True, progress=False)
    result = run(load(path), resume=True, progress=False)
    assert result.record is not None and result.record["metrics"]["global_step"] == 4
    a, b = _adapter_tensors(straight / "runs" / "tiny-run"), _adapter_tensors(resumed / "runs" / "tiny-run")
    import torch

    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # type: ignore[arg-type]
    with pytest.raises(FinetuneError, match="has finished"):
        run(load(path), resume=True, progress=False)


def test_dpo_on_preference_rows(tmp_path: Path, tiny_base: Path) -> None:
    rows = [{"prompt": f"n={i}", "chosen": "even" if i % 2 == 0 else "odd", "rejected": "maybe"} for i in range(12)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    result = run(load(write_recipe(tmp_path, tiny_base, method="dpo")), progress=False)
    assert result.record is not None and result.record["method"] == "dpo"
    metrics = [json.loads(x) for x in (result.plan.out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/chosen" in m for m in metrics)
    assert (result.plan.out / "adapter.gguf").is_file()


def test_full_tuning_writes_a_model_not_an_adapter(tmp_path: Path, tiny_base: Path) -> None:
    path = write_recipe(tmp_path, tiny_base, tuning="full", export={"gguf_adapter": False}, training={"max_steps": 2})
    result = run(load(path), progress=False)
    assert result.record is not None and result.record["kind"] == "full-model"
    assert (result.plan.out / "model" / "config.json").is_file()
    assert not (result.plan.out / "adapter.gguf").exists()


def test_a_lora_target_the_model_lacks_is_refused_before_training(tmp_path: Path, tiny_base: Path) -> None:
    with pytest.raises(BaseModelError, match=r"lora\.targets: the base model has no module 'qkv'.*q_proj"):
        run(load(write_recipe(tmp_path, tiny_base, lora={"targets": ["q_proj", "qkv"]})), progress=False)
    with pytest.raises(BaseModelError, match=r"'mlp' is not a linear layer"):
        run(load(write_recipe(tmp_path, tiny_base, lora={"targets": ["mlp"]})), progress=False)
    assert not (tmp_path / "runs" / "tiny-run" / "metrics.jsonl").exists()
