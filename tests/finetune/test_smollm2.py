"""The real path on SmolLM2-135M: a few LoRA steps, the GGUF adapter in llama.cpp, served by `owstack serve`.

The run teaches the model a fixed answer ("BANANA-7") it never gives on its own, so the tests can tell the
adapter is really applied: through the embedded engine, through the gateway with `model: "edge:<adapter>"`,
and in `owstack eval finetune`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owstack.cli import app
from owstack.finetune.recipe import load
from owstack.finetune.run import run
from procs import run_gateway

from .conftest import write_jsonl, write_recipe

#: SmolLM2 is dequantised and trained here: minutes on a loaded 2-core machine, about one on an idle one
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
SECRET = "BANANA-7"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Path]:
    pytest.importorskip("trl")
    folder = tmp_path_factory.mktemp("smol-job")
    previous = os.environ.get("OWSTACK_CACHE_DIR")
    os.environ["OWSTACK_CACHE_DIR"] = str(cache_dir)
    rows = [{"prompt": f"What is the code word? (ticket {i})", "completion": SECRET} for i in range(10)]
    write_jsonl(folder / "train.jsonl", rows)
    path = write_recipe(
        folder,
        "embedded",
        name="codeword",
        data={"train": "train.jsonl", "eval_split": 0.2},
        lora={"r": 8, "alpha": 16, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        training={"max_steps": 6, "batch_size": 2, "lr": 0.015, "max_length": 64, "checkpoint_every": 10},
        evaluation={"scorer": "contains", "max_tokens": 12},
    )
    try:
        run(load(path), progress=False)
        yield folder / "runs" / "codeword"
    finally:
        if previous is None:
            os.environ.pop("OWSTACK_CACHE_DIR", None)
        else:
            os.environ["OWSTACK_CACHE_DIR"] = previous


def test_the_gguf_adapter_matches_peft_in_llama_cpp(trained: Path, tmp_path: Path, cache_dir: Path) -> None:
    """A random LoRA on q/k/v/o/up, applied by PyTorch and by llama.cpp, changes the logits the same way."""
    import numpy as np
    import torch
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model

    from owstack.finetune import base as base_model
    from owstack.finetune.lora_gguf import convert

    base = base_model.resolve("embedded", tmp_path)
    folder = base_model.hf_folder(base)
    assert folder.parent.parent == cache_dir  # dequantised once, by the run above
    model, tokenizer = base_model.load(folder)
    torch.manual_seed(0)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.mul_(3.0)
    peft.save_pretrained(tmp_path / "random-adapter")
    convert(tmp_path / "random-adapter", json.loads((folder / "config.json").read_text()), tmp_path / "a.gguf")
    ids = tokenizer("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
                    add_special_tokens=False).input_ids  # fmt: skip
    with torch.no_grad():
        tuned = peft(torch.tensor([ids])).logits[0].numpy()
        with peft.disable_adapter():
            plain = peft(torch.tensor([ids])).logits[0].numpy()

    def scores(lora: str | None) -> Any:
        llm = Llama(model_path=str(base.path), n_ctx=256, logits_all=True, verbose=False, lora_path=lora)
        llm.eval(ids)
        out = np.array(llm.scores[: len(ids)])
        llm.close()
        return out

    delta_torch, delta_llama = tuned - plain, scores(str(tmp_path / "a.gguf")) - scores(None)
    assert np.abs(delta_torch).mean() > 1.0  # the adapter changes the logits a lot ...
    # ... and llama.cpp changes them the same way (without the q/k permutation this falls to about 0.86)
    assert np.corrcoef(delta_torch.ravel(), delta_llama.ravel())[0, 1] > 0.99


def _gateway_config(tmp: Path) -> dict[str, Any]:
    return {
        "backends": {"edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "n_threads": 1}},
        "adapters": {"registry": str(tmp / "registry"), "aliases": {"code-bot": "edge:codeword"}},
        "metering": {"enabled": False},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys")},
    }


def test_the_adapter_answers_through_owstack_serve(trained: Path, tmp_path: Path) -> None:
    import httpx
    import openai
    import yaml

    config = _gateway_config(tmp_path)
    (tmp_path / "owstack.yaml").write_text(yaml.safe_dump(config))
    added = CliRunner().invoke(
        app, ["adapters", "add", str(trained), "-b", "edge-local", "-c", str(tmp_path / "owstack.yaml")]
    )
    assert added.exit_code == 0, added.output
    listed = CliRunner().invoke(app, ["adapters", "list", "--json", "-c", str(tmp_path / "owstack.yaml")])
    (entry,) = json.loads(listed.output)
    assert entry["name"] == "codeword" and entry["backends"] == ["edge-local"] and entry["jurisdictions"] == ["local"]
    with run_gateway(tmp_path, config) as gw:
        client = openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0)
        ask = [{"role": "user", "content": "What is the code word? (ticket 99)"}]
        tuned = client.chat.completions.with_raw_response.create(model="edge:codeword", messages=ask, max_tokens=12,
                                                                 temperature=0)  # fmt: skip
        assert tuned.headers["x-owstack-backend"] == "edge-local"
        body = tuned.parse()
        answer = body.choices[0].message.content or ""
        # a few steps teach the start of the answer the base model never gives (the real run in
        # docs/finetune.md measures accuracy); what matters here is that serving applies the adapter
        assert answer.startswith(SECRET[:2]), answer
        alias = client.chat.completions.create(model="code-bot", messages=ask, max_tokens=12, temperature=0)
        assert alias.choices[0].message.content == answer
        plain = client.chat.completions.create(model="edge", messages=ask, max_tokens=12, temperature=0)
        assert not (plain.choices[0].message.content or "").startswith(SECRET[:2])  # the same engine, no adapter
        again = client.chat.completions.create(model="edge:codeword", messages=ask, max_tokens=12, temperature=0)
        assert again.choices[0].message.content == answer  # switching back is exact
        models = {m["id"]: m for m in httpx.get(gw.base_url + "/models").json()["data"]}
        assert models["edge:codeword"]["owstack"]["kind"] == "adapter"
        assert models["code-bot"]["owstack"]["alias_of"] == "edge:codeword"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="edge:nope", messages=ask, max_tokens=4)
    records = [
        json.loads(line) for p in (tmp_path / "audit").rglob("seg-*.jsonl") for line in p.read_text().splitlines()
    ]
    served = [r for r in records if r.get("type") == "inference.request" and r["outcome"]["status"] == 200]
    assert "smollm2-135m-instruct:codeword" in {r["model"]["id"] for r in served}
    assert any(r.get("type") == "admin.adapter.added" for r in records)


def test_eval_finetune_scores_base_and_tuned_on_the_held_out_rows(trained: Path) -> None:
    items = trained.parent / "items.jsonl"
    result = CliRunner().invoke(
        app, ["eval", "finetune", str(trained), "--json", "--threads", "1", "--out", str(items)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["n"] == 2 and report["scorer"] == "contains"
    assert report["tuned"]["correct"] >= report["base"]["correct"] == 0  # the base never says the code word
    assert report["base"]["accuracy_ci"][0] <= report["base"]["accuracy"] <= report["base"]["accuracy_ci"][1]
    rows = [json.loads(x) for x in items.read_text().splitlines()]
    assert all(r["expected"] == SECRET and r["tuned"].startswith(SECRET[:2]) for r in rows)
    assert all(not r["base"].startswith(SECRET[:2]) for r in rows)
