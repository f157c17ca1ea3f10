"""The OPSDC training loop: rollouts from the student, reverse KL to a concise-prompted teacher copy.

One step: take `batch_size` prompts at the data cursor, sample one rollout each from the student
(temperature 1.0), then in micro-batches compute the teacher's logits (no grad) and the student's, and
back-propagate the reverse KL summed over response tokens divided by the step's total response tokens
(so accumulation gives exactly the token mean of the whole batch). Clip the gradient norm to 1.0, take
an AdamW step, refresh the teacher from the student every `teacher_refresh` steps (0: frozen).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from owstack.efficiency.opsdc import checkpoint
from owstack.efficiency.opsdc.loss import reverse_kl_sum
from owstack.efficiency.opsdc.rollout import Batch, response_logits, rollout

#: training prompts are drawn from this seed range, apart from evaluation seeds
TRAIN_SEED_OFFSET = 1_000_000
#: run-config fields that must match for --resume to continue a run
_RESUME_KEYS = (
    "model",
    "batch_size",
    "micro_batch",
    "lr",
    "weight_decay",
    "max_new_tokens",
    "instruction",
    "teacher_refresh",
    "seed",
    "n_prompts",
)


class TrainError(Exception):
    """A run that cannot start or continue; the message says why."""


class Interrupted(Exception):
    def __init__(self, step: int, path: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved in {path}")
        self.step, self.path = step, path


@dataclass
class TrainConfig:
    out: Path
    model: str = "embedded"
    steps: int = 30
    batch_size: int = 8
    micro_batch: int = 4
    lr: float = 1e-6
    weight_decay: float = 0.01
    clip: float = 1.0
    max_new_tokens: int = 192
    temperature: float = 1.0
    teacher_refresh: int = 50
    instruction: str = "v1"
    checkpoint_every: int = 10
    seed: int = 0
    device: str = "cpu"
    n_prompts: int = 512
    #: torch intra-op threads (0: torch's default); 1 is much faster on a busy 2-core machine
    threads: int = 0
    prompts: Sequence[str] | None = field(default=None, repr=False)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("prompts")
        data["out"] = str(self.out)
        data["prompts_source"] = "custom" if self.prompts is not None else "generated"
        return data


@dataclass
class StepLog:
    step: int
    loss: float
    kl: float
    rollout_len: float
    truncated: float
    grad_norm: float
    teacher_refresh: bool
    seconds: float


@dataclass
class TrainResult:
    final: Path  # the Hugging Face checkpoint folder
    model: Any
    source: Any  # loading.Source of the starting model
    steps: int


def prompt_pool(cfg: TrainConfig) -> list[str]:
    if cfg.prompts is not None:
        return list(cfg.prompts)
    from owstack.efficiency.problems import generate

    return [p.question for p in generate(cfg.n_prompts, seed=TRAIN_SEED_OFFSET + cfg.seed)]


def batch_at(pool: Sequence[str], cursor: int, size: int, seed: int) -> list[str]:
    """`size` prompts from the cursor on; each pass over the pool uses its own seeded order."""
    out = []
    for index in range(cursor, cursor + size):
        epoch, pos = divmod(index, len(pool))
        order = list(range(len(pool)))
        random.Random(f"{seed}:{epoch}").shuffle(order)
        out.append(pool[order[pos]])
    return out


def _check_resume(out: Path, cfg: TrainConfig, resume: bool) -> Path | None:
    found = checkpoint.latest(out)
    if found is None:
        if resume and (out / "run.json").exists():
            raise TrainError(f"--resume: {out} has no complete checkpoint yet; start again without --resume")
        return None
    if not resume:
        raise TrainError(
            f"{out} already holds a run (checkpoint {found.name}); pass --resume to continue it, "
            "or choose another --out"
        )
    saved = json.loads((out / "run.json").read_text("utf-8"))
    changed = [k for k in _RESUME_KEYS if saved.get(k) != cfg.public().get(k)]
    if changed:
        raise TrainError(f"--resume: the run in {out} used different {', '.join(changed)}; pass the same values")
    return found


def _step(student: Any, teacher: Any, batches: list[Batch], tokens: float) -> float:
    """Forward/backward over the micro-batches (gradients of KL sum / `tokens`); returns the summed KL."""
    import torch

    total = 0.0
    for b in batches:
        with torch.no_grad():
            t_logits = response_logits(teacher, b.teacher_ids, b.teacher_mask, b.teacher_prompt_len, b.response_len)
        s_logits = response_logits(student, b.student_ids, b.student_mask, b.prompt_len, b.response_len)
        kl_sum = reverse_kl_sum(s_logits, t_logits, b.response_mask)
        (kl_sum / tokens).backward()
        total += float(kl_sum.detach())
    return total


@dataclass
class _Run:
    cfg: TrainConfig
    student: Any
    teacher: Any
    tokenizer: Any
    optimizer: Any
    source: Any
    state: dict[str, Any]
    pool: list[str]
    system: str

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))


def _setup(cfg: TrainConfig, resume: bool, loaded: tuple[Any, Any, Any] | None) -> _Run:
    import torch

    from owstack.efficiency.instructions import instruction
    from owstack.efficiency.opsdc import loading

    if cfg.micro_batch < 1 or cfg.batch_size < 1 or cfg.batch_size % cfg.micro_batch:
        raise TrainError("--batch-size must be a positive multiple of --micro-batch")
    out = Path(cfg.out)
    found = _check_resume(out, cfg, resume)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    student, tokenizer, source = loaded or loading.load(cfg.model, device=cfg.device)
    teacher = copy.deepcopy(student).requires_grad_(False)
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"cursor": 0, "refreshes": 0, "step": 0}
    if found is not None:
        state = checkpoint.restore(found, student, teacher, optimizer)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({**cfg.public(), "source": str(source)}, indent=2), "utf-8")
    return _Run(
        cfg, student, teacher, tokenizer, optimizer, source, state, prompt_pool(cfg), instruction(cfg.instruction)
    )


def _train_step(run: _Run) -> StepLog:
    """One optimizer step: rollouts, reverse KL, clip, AdamW, teacher refresh. Advances `run.state`."""
    import torch

    cfg, started = run.cfg, time.perf_counter()
    questions = batch_at(run.pool, int(run.state["cursor"]), cfg.batch_size, cfg.seed)
    batches = [
        rollout(
            run.student,
            run.tokenizer,
            questions[i : i + cfg.micro_batch],
            run.system,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
        )
        for i in range(0, len(questions), cfg.micro_batch)
    ]
    tokens = max(1.0, float(sum(int(b.response_mask.sum()) for b in batches)))
    run.optimizer.zero_grad(set_to_none=True)
    kl_total = _step(run.student, run.teacher, batches, tokens)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(run.student.parameters(), cfg.clip))
    run.optimizer.step()
    step = run.step + 1
    run.state.update(step=step, cursor=int(run.state["cursor"]) + cfg.batch_size)
    refreshed = bool(cfg.teacher_refresh) and step % cfg.teacher_refresh == 0
    if refreshed:
        run.teacher.load_state_dict(run.student.state_dict())
        run.state["refreshes"] = int(run.state["refreshes"]) + 1
    lengths = [n for b in batches for n in b.response_mask.sum(dim=1).tolist()]
    truncated = sum(int((~b.finished).sum()) for b in batches)
    return StepLog(
        step=step,
        loss=kl_total / tokens,
        kl=kl_total / tokens,
        rollout_len=sum(lengths) / len(lengths),
        truncated=truncated / len(lengths),
        grad_norm=grad_norm,
        teacher_refresh=refreshed,
        seconds=round(time.perf_counter() - started, 2),
    )


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[StepLog], None] | None = None,
    loaded: tuple[Any, Any, Any] | None = None,
) -> TrainResult:
    """Run (or continue) a distillation; the result names the final Hugging Face checkpoint folder."""
    run = _setup(cfg, resume, loaded)
    out = Path(cfg.out)
    with (out / "log.jsonl").open("a", encoding="utf-8") as log:
        while run.step < cfg.steps:
            if should_stop():
                path = checkpoint.save(out, run.step, run.student, run.teacher, run.optimizer, run.state)
                raise Interrupted(run.step, path)
            entry = _train_step(run)
            log.write(json.dumps(asdict(entry)) + "\n")
            log.flush()
            if on_step is not None:
                on_step(entry)
            if entry.step % cfg.checkpoint_every == 0 or entry.step == cfg.steps:
                checkpoint.save(out, entry.step, run.student, run.teacher, run.optimizer, run.state)
    from owstack.efficiency.opsdc.loading import save_hf

    final = save_hf(run.student, run.tokenizer, out / "final")
    return TrainResult(final=final, model=run.student, source=run.source, steps=run.step)
