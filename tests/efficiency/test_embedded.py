"""With the real embedded model (SmolLM2-135M from the wheel): budget forcing, the harness, GGUF export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from owstack.cli import app
from owstack.efficiency.policies import Policy
from owstack.types import ChatRequest

pytestmark = pytest.mark.slow


async def _ask(backend: Any, policy: Policy | None, max_tokens: int = 48) -> Any:
    request = ChatRequest(
        model=backend.model,
        messages=[{"role": "user", "content": "What is 17 + 25? Explain."}],
        params={"max_tokens": max_tokens, "temperature": 0.0},
        reasoning=policy,
    )
    return await backend.complete(request)


def test_embedded_budget_ends_thinking_at_n_tokens() -> None:
    from owstack.backends.llamacpp import LlamaCppBackend

    async def main() -> list[Any]:
        backend = LlamaCppBackend.from_catalog("smollm2-135m-instruct", n_threads=2)
        await backend.start()
        try:
            out = [await _ask(backend, Policy("budget", n)) for n in (4, 12)]
            out.append(await _ask(backend, None))
            out.append(backend.tokenize(out[1].body["choices"][0]["message"]["reasoning_content"]))
            return out
        finally:
            await backend.aclose()

    four, twelve, plain, twelve_retokenized = asyncio.run(main())
    assert four.usage.reasoning_tokens == 4
    assert twelve.usage.reasoning_tokens == 12
    assert abs(twelve_retokenized - 12) <= 2  # the reasoning text really is about 12 tokens long
    for completion, n in ((four, 4), (twelve, 12)):
        message = completion.body["choices"][0]["message"]
        assert message["reasoning_content"] and "</think>" not in message["content"]
        assert completion.usage.completion_tokens > n  # the answer continues after the forced marker
        assert completion.body["usage"]["completion_tokens_details"]["reasoning_tokens"] == n
    assert plain.usage.reasoning_tokens == 0 and "reasoning_content" not in plain.body["choices"][0]["message"]


def test_embedded_budget_zero_thinks_not_at_all() -> None:
    from owstack.backends.llamacpp import LlamaCppBackend

    async def main() -> Any:
        backend = LlamaCppBackend.from_catalog("smollm2-135m-instruct", n_threads=2)
        await backend.start()
        try:
            return await _ask(backend, Policy("budget", 0), max_tokens=8)
        finally:
            await backend.aclose()

    assert asyncio.run(main()).usage.reasoning_tokens == 0


def test_eval_efficiency_on_the_embedded_engine(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "efficiency",
            "--backend",
            "embedded",
            "--policy",
            "concise",
            "--n",
            "3",
            "--max-tokens",
            "24",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 3 and report["baseline"]["n"] == 3
    assert 0 < report["mean_completion_tokens"] <= 24 and report["missing_usage"] == 0
    items = [json.loads(line) for line in out.read_text().splitlines()]
    assert [i["policy"] for i in items] == ["default"] * 3 + ["concise:v1"] * 3
    assert all(i["completion_tokens"] <= 24 for i in items)
    bad = CliRunner().invoke(app, ["eval", "efficiency", "--model", str(tmp_path / "nope.gguf"), "--n", "1"])
    assert bad.exit_code == 2 and "nope.gguf" in bad.output and "Traceback" not in bad.output


def test_gguf_export_round_trips_through_llama_cpp(tmp_path: Path) -> None:
    """The decisive check: export the untrained model and compare llama.cpp's logits with PyTorch's."""
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    import llama_cpp

    from owstack.efficiency.opsdc import gguf_export, loading

    model, tokenizer, source = loading.load("embedded")
    assert source.gguf_path is not None
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 12 + 7?"}], add_generation_prompt=True, tokenize=False
    )
    ids = tokenizer(prompt, add_special_tokens=False).input_ids
    with torch.no_grad():
        reference = model(torch.tensor([ids])).logits[0].numpy()
    for out_type, tolerance in (("f32", 0.25), ("f16", 0.5)):
        path = gguf_export.export(model, source.gguf_path, tmp_path / f"m-{out_type}.gguf", out_type=out_type)
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
        try:
            assert llm.metadata["tokenizer.chat_template"].startswith("{% for message in messages %}")
            llm.eval(ids)
            got = np.array(llm.scores[: len(ids)])
        finally:
            llm.close()
        assert np.abs(got - reference).max() < tolerance, out_type
        assert (got.argmax(-1) == reference.argmax(-1)).mean() == 1.0, out_type
        path.unlink()
    # the trainer's final save: a model read from GGUF is saved as a plain safetensors checkpoint
    folder = loading.save_hf(model, tokenizer, tmp_path / "final")
    assert (folder / "model.safetensors").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()
    with pytest.raises(gguf_export.ExportError, match="--gguf-type"):
        gguf_export.export(model, source.gguf_path, tmp_path / "x.gguf", out_type="q2")


def test_permute_matches_llama_cpp_layout() -> None:
    np = pytest.importorskip("numpy")
    from owstack.efficiency.opsdc.gguf_export import permute

    rows = np.arange(8 * 3).reshape(8, 3)  # 2 heads x head_dim 4
    out = permute(rows, 2)
    # within each head, the two rotary halves are interleaved: rows 0,2,1,3 | 4,6,5,7
    assert out[:, 0].tolist() == [0, 6, 3, 9, 12, 18, 15, 21]
