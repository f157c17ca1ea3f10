"""The OPSDC trainer on a tiny random Llama (built in-test, no download)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from owstack.efficiency.instructions import instruction  # noqa: E402
from owstack.efficiency.opsdc import checkpoint, loss, rollout  # noqa: E402
from owstack.efficiency.opsdc.loading import ModelLoadError, Source, resolve_source  # noqa: E402
from owstack.efficiency.opsdc.trainer import (  # noqa: E402
    Interrupted,
    TrainConfig,
    TrainError,
    batch_at,
    train,
)

from .conftest import tiny_model, tiny_tokenizer  # noqa: E402

PROMPTS = ["What is 2 + 3?", "What is 7 * 6?", "What is 10 - 4?", "What is 9 + 9?", "What is 3 * 3?"]


def test_reverse_kl_matches_a_hand_computed_case() -> None:
    # p_S = (0.5, 0.5), p_T = (0.25, 0.75): KL = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3)
    student = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))
    teacher = torch.log(torch.tensor([[[0.25, 0.75], [0.9, 0.1]]]))
    per_token = loss.token_reverse_kl(student, teacher)
    assert per_token[0, 0].item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)
    assert per_token[0, 1].item() == pytest.approx(0.0, abs=1e-7)
    # averaged over response tokens only: the masked second position does not count
    mask = torch.tensor([[1, 0]])
    assert loss.reverse_kl(student, teacher, mask).item() == pytest.approx(0.5 * math.log(4 / 3), abs=1e-6)
    both = torch.tensor([[1, 1]])
    assert loss.reverse_kl(student, teacher, both).item() == pytest.approx(0.25 * math.log(4 / 3), abs=1e-6)
    # reverse, not forward: KL(p_T || p_S) differs
    forward = loss.token_reverse_kl(teacher, student)[0, 0].item()
    assert forward == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-6)
    assert forward != pytest.approx(per_token[0, 0].item(), abs=1e-3)


def test_reverse_kl_is_fp32_with_low_precision_logits() -> None:
    student = torch.randn(1, 3, 50).to(torch.bfloat16)
    teacher = torch.randn(1, 3, 50).to(torch.bfloat16)
    assert loss.token_reverse_kl(student, teacher).dtype == torch.float32


def test_response_mask_stops_after_the_first_stop_token() -> None:
    response = torch.tensor([[5, 6, 2, 0, 0], [5, 6, 7, 8, 9], [2, 0, 0, 0, 0]])
    mask = rollout.response_mask(response, [2])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_rollout_aligns_student_and_teacher_on_the_same_response() -> None:
    model, tok = tiny_model(len(tiny_tokenizer())), tiny_tokenizer()
    torch.manual_seed(0)
    batch = rollout.rollout(model, tok, PROMPTS[:3], instruction("v1"), max_new_tokens=8)
    r = batch.response_len
    assert torch.equal(batch.student_ids[:, -r:], batch.teacher_ids[:, -r:])
    assert batch.teacher_prompt_len > batch.prompt_len  # the system message is only in the teacher prompt
    logits = rollout.response_logits(model, batch.student_ids, batch.student_mask, batch.prompt_len, r)
    assert logits.shape[:2] == (3, r)


def _cfg(out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        out=out,
        model="tiny",
        steps=4,
        batch_size=4,
        micro_batch=2,
        lr=3e-3,
        max_new_tokens=8,
        teacher_refresh=0,
        checkpoint_every=2,
        seed=0,
        prompts=PROMPTS,
    )
    base.update(kw)
    return TrainConfig(**base)


def _loaded(seed: int = 0) -> tuple[Any, Any, Source]:
    tok = tiny_tokenizer()
    return tiny_model(len(tok), seed=seed), tok, Source("tiny")


def _fixed_kl(model: Any, teacher: Any, batch: rollout.Batch) -> float:
    with torch.no_grad():
        s = rollout.response_logits(model, batch.student_ids, batch.student_mask, batch.prompt_len, batch.response_len)
        t = rollout.response_logits(
            teacher, batch.teacher_ids, batch.teacher_mask, batch.teacher_prompt_len, batch.response_len
        )
        return float(loss.reverse_kl(s, t, batch.response_mask))


def test_a_few_steps_lower_the_loss(tmp_path: Path) -> None:
    import copy

    model, tok, source = _loaded()
    teacher = copy.deepcopy(model)
    torch.manual_seed(123)
    probe = rollout.rollout(model, tok, PROMPTS, instruction("v1"), max_new_tokens=8)
    before = _fixed_kl(model, teacher, probe)
    result = train(_cfg(tmp_path / "run", steps=6), loaded=(model, tok, source))
    after = _fixed_kl(result.model, teacher, probe)
    assert before > 1e-4  # the concise system prompt really changes the teacher's distribution
    assert after < 0.7 * before
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]
    assert all(e["rollout_len"] > 0 and e["loss"] >= 0 for e in log)
    assert (tmp_path / "run" / "final" / "config.json").is_file()


def test_interrupt_then_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = train(_cfg(tmp_path / "a", teacher_refresh=3), loaded=_loaded())
    steps_seen: list[int] = []
    with pytest.raises(Interrupted) as info:
        train(
            _cfg(tmp_path / "b", teacher_refresh=3),
            loaded=_loaded(),
            should_stop=lambda: len(steps_seen) >= 2,
            on_step=lambda e: steps_seen.append(e.step),
        )
    assert info.value.step == 2 and checkpoint.latest(tmp_path / "b") is not None
    with pytest.raises(TrainError, match="--resume"):
        train(_cfg(tmp_path / "b", teacher_refresh=3), loaded=_loaded(seed=1))
    with pytest.raises(TrainError, match="different lr"):
        train(_cfg(tmp_path / "b", teacher_refresh=3, lr=0.5), resume=True, loaded=_loaded(seed=1))
    resumed = train(_cfg(tmp_path / "b", teacher_refresh=3), resume=True, loaded=_loaded(seed=1))
    assert resumed.steps == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = (tmp_path / "a" / "log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    strip = [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in log_a]
    assert strip == [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in log_b]
    assert [json.loads(x)["teacher_refresh"] for x in log_a] == [False, False, True, False]


def test_batches_walk_the_pool_in_a_seeded_order() -> None:
    pool = [f"p{i}" for i in range(5)]
    first = batch_at(pool, 0, 5, seed=0)
    assert sorted(first) == pool  # one pass covers every prompt once
    assert batch_at(pool, 5, 5, seed=0) != first or batch_at(pool, 10, 5, seed=0) != first
    assert batch_at(pool, 2, 3, seed=0) == first[2:5]


def test_models_that_cannot_load_offline_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no GGUF file"):
        resolve_source(str(tmp_path / "missing.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve_source(str(tmp_path / "empty"))
    from owstack.efficiency.opsdc.loading import load

    with pytest.raises(ModelLoadError, match="offline"):
        load("owstack-test/definitely-not-cached-model")
