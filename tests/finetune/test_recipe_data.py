"""Recipes, data rows and jurisdictions: every bad input is a one-line error naming the field or line."""

from __future__ import annotations

from pathlib import Path

import pytest

from owstack.finetune import sovereignty
from owstack.finetune.data import Source, read_file, split
from owstack.finetune.errors import DataError, RecipeError, SovereigntyError
from owstack.finetune.plan import prepare
from owstack.finetune.recipe import load

from .conftest import parity_rows, write_jsonl, write_recipe


def test_unknown_fields_are_named_with_their_path(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "tiny", lora={"rank": 8})
    with pytest.raises(RecipeError, match=r"lora\.rank: unknown field"):
        load(path)
    path = write_recipe(tmp_path, "tiny", trainin={"lr": 1})
    with pytest.raises(RecipeError, match=r"trainin: unknown field"):
        load(path)


def test_overrides_are_validated_like_the_file(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "tiny")
    loaded = load(path, ["training.lr=1e-4", "lora.targets=[q_proj, k_proj]", "out=elsewhere"])
    assert loaded.recipe.training.lr == pytest.approx(1e-4)
    assert loaded.recipe.lora.targets == ("q_proj", "k_proj")
    assert loaded.out == tmp_path / "elsewhere"
    with pytest.raises(RecipeError, match=r"training\.batch_size: Input should be greater than or equal to 1"):
        load(path, ["training.batch_size=0"])
    with pytest.raises(RecipeError, match=r"training\.warmup: unknown field"):
        load(path, ["training.warmup=3"])
    with pytest.raises(RecipeError, match=r"dotted\.field=value"):
        load(path, ["training.lr"])


def test_recipe_level_rules(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"jurisdiction: 'EU' is not a jurisdiction label"):
        load(write_recipe(tmp_path, "tiny", jurisdiction="EU"))
    with pytest.raises(RecipeError, match="full tuning has no adapter"):
        load(write_recipe(tmp_path, "tiny", tuning="full"))
    with pytest.raises(RecipeError, match="PERSON need a named-entity model"):
        load(write_recipe(tmp_path, "tiny", data={"train": "train.jsonl", "redact_pii": {"entities": ["PERSON"]}}))
    (tmp_path / "noname.yaml").write_text("data: {train: train.jsonl}\n")
    with pytest.raises(RecipeError, match=r"name: required field is missing"):
        load(tmp_path / "noname.yaml")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ('{"messages": [{"role": "bot", "content": "hi"}]}', r"train\.jsonl:3: `messages\[0\]\.role` must be one of"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', r"train\.jsonl:3: `messages` must end with an assistant"),
        ('{"prompt": "hi"}', r"train\.jsonl:3: a prompt/completion row needs `completion`"),
        ('{"text": "hi"}', r"train\.jsonl:3: a row needs `messages`"),
        ("not json", r"train\.jsonl:3: not valid JSON"),
        ('{"prompt": "q", "chosen": "a", "rejected": "b"}', r"train\.jsonl:3: a preference row .* needs `method: dpo`"),
        ('{"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "x"}]}', r"content` must be"),
    ],
)
def test_a_bad_row_is_named_by_its_line(tmp_path: Path, line: str, pattern: str) -> None:
    rows = parity_rows(2)
    write_jsonl(tmp_path / "train.jsonl", [rows[0], rows[1], line])
    with pytest.raises(DataError, match=pattern):
        prepare(load(write_recipe(tmp_path, "embedded")))


def test_row_shapes_normalise_to_trl_examples(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"prompt": "2+2?", "completion": "4", "id": 7},
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                    {"role": "assistant", "content": "d"},
                ]
            },
        ],
    )
    examples, source = read_file(path, "sft", "all_turns", ["eu"])
    assert [e.ref for e in examples] == ["mixed.jsonl:1", "mixed.jsonl:2", "mixed.jsonl:2"]
    assert examples[0].data == {
        "prompt": [{"role": "user", "content": "2+2?"}],
        "completion": [{"role": "assistant", "content": "4"}],
    }
    assert examples[2].data["prompt"][-1] == {"role": "user", "content": "c"}
    assert examples[2].data["completion"] == [{"role": "assistant", "content": "d"}]
    assert (source.rows, source.examples, source.jurisdictions) == (2, 3, ("eu",))
    last, _ = read_file(path, "sft", "last_turn", ["eu"])
    assert len(last) == 2
    dpo = write_jsonl(tmp_path / "prefs.jsonl", [{"prompt": "q", "chosen": "good", "rejected": "bad"}])
    (pref,), _ = read_file(dpo, "dpo", "last_turn", ["local"])
    assert pref.data["chosen"] == [{"role": "assistant", "content": "good"}]
    with pytest.raises(DataError, match=r"mixed\.jsonl:1: method dpo needs preference rows"):
        read_file(path, "dpo", "last_turn", ["local"])


def test_parquet_rows_are_read_and_checked(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": ""}]),
                   tmp_path / "d.parquet")  # fmt: skip
    with pytest.raises(DataError, match=r"d\.parquet row 2: `completion` is empty"):
        read_file(tmp_path / "d.parquet", "sft", "last_turn", ["local"])


def test_split_holds_out_whole_rows_with_the_seed(tmp_path: Path) -> None:
    examples, _ = read_file(write_jsonl(tmp_path / "t.jsonl", parity_rows(20)), "sft", "last_turn", ["local"])
    train, held = split(examples, 0.25, seed=3)
    assert len(held) == 5 and len(train) == 15
    assert not {e.ref for e in train} & {e.ref for e in held}
    assert split(examples, 0.25, seed=3) == (train, held)
    assert split(examples, 0.25, seed=4)[1] != held


def test_missing_base_is_refused_before_reading_weights(tmp_path: Path) -> None:
    from owstack.finetune.errors import BaseModelError

    with pytest.raises(BaseModelError, match=r"not on disk .* owstack never downloads weights"):
        prepare(load(write_recipe(tmp_path, "Qwen/Qwen3-0.6B-not-here")))
    with pytest.raises(BaseModelError, match="no GGUF file at"):
        prepare(load(write_recipe(tmp_path, "missing.gguf")))
    with pytest.raises(BaseModelError, match="catalog model without a bundled GGUF"):
        prepare(load(write_recipe(tmp_path, "qwen3.5-0.8b")))


def _src(kind: str, jurisdictions: tuple[str, ...], tenant: str = "acme") -> Source:
    return Source(kind, "x", "0" * 64, 1, 1, jurisdictions, {"tenant": tenant})


def test_compute_outside_a_sources_jurisdictions_is_refused() -> None:
    sovereignty.check_compute("eu-fr", [_src("file", ("eu",)), _src("audit", ("eu-fr", "local"))])
    with pytest.raises(SovereigntyError, match=r"runs in 'us', but tenant 'acme' may only be processed in eu, local"):
        sovereignty.check_compute("us", [_src("file", ("us",)), _src("audit", ("eu", "local"))])
    with pytest.raises(SovereigntyError, match="data file x"):
        sovereignty.check_compute("local", [_src("file", ("eu",))])


def test_serving_jurisdictions_are_what_every_source_allows() -> None:
    assert sovereignty.serving_jurisdictions([_src("file", ("eu", "local")), _src("file", ("eu-fr",))]) == ["eu-fr"]
    assert sovereignty.serving_jurisdictions([_src("file", ("eu", "local")), _src("file", ("eu", "us"))]) == ["eu"]
    assert sovereignty.serving_jurisdictions([_src("file", ("eu",)), _src("file", ("us",))]) == []
    assert sovereignty.may_serve("eu-de", ["eu"]) and not sovereignty.may_serve("us", ["eu"])


def test_a_job_in_the_wrong_jurisdiction_is_refused_before_training(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "embedded", jurisdiction="us", data={"train": "train.jsonl", "jurisdictions": ["eu"]})
    with pytest.raises(SovereigntyError, match="runs in 'us'"):
        prepare(load(path))
