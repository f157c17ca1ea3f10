"""`owstack finetune`: user errors are one line and exit 2, before any training; demo and check work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from owstack.cli import app

from .conftest import write_jsonl, write_recipe


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("over", "rows", "message"),
    [
        ({"lora": {"rnk": 4}}, None, "invalid recipe (RECIPE): lora.rnk: unknown field"),
        (
            {},
            ['{"messages": [{"role": "user", "content": "x"}]}'],
            "train.jsonl:1: `messages` must end with an assistant",
        ),
        ({"base": "/nowhere/model.gguf"}, None, "base: no GGUF file at /nowhere/model.gguf"),
        ({"lora": {"targets": ["q_proj", "wq"]}}, None, "lora.targets: the base model has no module 'wq'"),
        ({"jurisdiction": "us", "data": {"jurisdictions": ["eu"]}}, None, "this job runs in 'us'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, tiny_base: Path, over: dict[str, object], rows: list[str] | None, message: str
) -> None:
    if rows is not None:
        write_jsonl(tmp_path / "train.jsonl", rows)
    settings: dict[str, object] = {"base": str(tiny_base), **over}
    base = settings.pop("base")
    data = settings.pop("data", None)
    recipe = write_recipe(tmp_path, base, **settings, **({"data": {"train": "train.jsonl", **data}} if data else {}))
    code, output = _run("finetune", "run", str(recipe))
    assert code == 2, output
    assert output.startswith("error: ") and len(output.strip().splitlines()) == 1
    assert message.replace("RECIPE", str(recipe)) in output
    assert "Traceback" not in output
    assert not (tmp_path / "runs" / "tiny-run" / "checkpoints").exists()  # nothing trained


def test_set_overrides_and_a_bad_override(tmp_path: Path, tiny_base: Path) -> None:
    recipe = write_recipe(tmp_path, tiny_base)
    code, output = _run("finetune", "run", str(recipe), "--set", "training.lr=fast")
    assert code == 2 and "training.lr: Input should be a valid number" in output
    code, output = _run("finetune", "check", str(recipe), "--set", "data.eval_split=0.5")
    assert code == 0, output
    assert "train 12 / held out 12 examples; targets q_proj, v_proj" in output


def test_demo_writes_a_valid_task_and_recipe(tmp_path: Path) -> None:
    code, output = _run("finetune", "demo", str(tmp_path / "demo"), "--rows", "120", "--seed", "1")
    assert code == 0, output
    rows = [json.loads(x) for x in (tmp_path / "demo" / "tickets.jsonl").read_text().splitlines()]
    assert len(rows) == 120 and len({r["messages"][0]["content"] for r in rows}) == 120  # distinct tickets
    labels = [r["messages"][1]["content"] for r in rows]
    assert {labels.count(x) for x in set(labels)} == {30} and set(labels) == {
        "billing",
        "technical",
        "account",
        "shipping",
    }
    code, output = _run("finetune", "check", str(tmp_path / "demo" / "recipe.yaml"), "--no-load-model")
    assert code == 0, output
    assert "train 96 / held out 24 examples" in output
