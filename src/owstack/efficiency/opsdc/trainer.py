"""The OPSDC run: rollouts from the student, reverse KL to a concise-prompted teacher copy, on the Trainer.

One step: take `batch_size` prompts at the data cursor, sample one rollout each from the student
(temperature 1.0), then in micro-batches compute the teacher's logits (no grad) and the student's, and
back-propagate the reverse KL summed over response tokens divided by the step's total response tokens
(so accumulation gives exactly the token mean of the whole batch). Clip the gradient norm to 1.0, take
an AdamW step, refresh the teacher from the student every `teacher_refresh` steps (0: frozen).

The step itself is `engine.OPSDCTrainer.training_step`; the transformers Trainer around it (the engine
`owstack finetune` uses) does the rest and runs unchanged under `accelerate launch` on several processes
or GPUs, with `batch_size` the global batch. This module keeps the run's contract: the config, the seeded
prompt order, refusing or resuming a run folder, `log.jsonl`, and the final Hugging Face checkpoint.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from owstack.efficiency.opsdc import checkpoint

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


def _args(cfg: TrainConfig, out: Path, world: int) -> Any:
    from transformers import TrainingArguments

    if cfg.micro_batch < 1 or cfg.batch_size < 1 or cfg.batch_size % cfg.micro_batch:
        raise TrainError("--batch-size must be a positive multiple of --micro-batch")
    if cfg.batch_size % world:
        raise TrainError(f"--batch-size ({cfg.batch_size}) must be a multiple of the {world} processes")
    return TrainingArguments(
        output_dir=str(checkpoint.folder(out)),
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size // world,
        gradient_accumulation_steps=1,  # micro-batches are accumulated inside the step (exact token mean)
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.clip,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.checkpoint_every,
        save_total_limit=2,
        seed=cfg.seed,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=cfg.device == "cpu",
    )


def _setup(cfg: TrainConfig, resume: bool, loaded: tuple[Any, Any, Any] | None) -> tuple[Any, Any, Any, Path | None]:
    import torch

    from owstack.efficiency.opsdc import loading

    found = _check_resume(Path(cfg.out), cfg, resume)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    student, tokenizer, source = loaded or loading.load(cfg.model, device=cfg.device)
    return student, tokenizer, source, found


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[StepLog], None] | None = None,
    loaded: tuple[Any, Any, Any] | None = None,
) -> TrainResult:
    """Run (or continue) a distillation; the result names the final Hugging Face checkpoint folder."""
    import torch
    from transformers import PrinterCallback

    from owstack.efficiency.instructions import instruction
    from owstack.efficiency.opsdc.engine import OPSDCCallback, OPSDCTrainer, Questions, collate

    out = Path(cfg.out)
    student, tokenizer, source, found = _setup(cfg, resume, loaded)
    teacher = copy.deepcopy(student).requires_grad_(False)
    state: dict[str, Any] = {"refreshes": 0}
    if found is not None:
        state = checkpoint.restore_teacher(found, teacher)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({**cfg.public(), "source": str(source)}, indent=2), "utf-8")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    trainer = OPSDCTrainer(
        model=student,
        args=_args(cfg, out, world),
        train_dataset=Questions(batch_at(prompt_pool(cfg), 0, cfg.steps * cfg.batch_size, cfg.seed)),
        data_collator=collate,
        processing_class=tokenizer,
        optimizers=(optimizer, constant),
        teacher=teacher,
        opsdc=cfg,
        system=instruction(cfg.instruction),
    )
    trainer.remove_callback(PrinterCallback)
    callback = OPSDCCallback(trainer, out / "log.jsonl", should_stop, on_step, StepLog, state)
    trainer.add_callback(callback)
    student.eval()  # as before: no dropout; the Trainer's own step (which would call .train()) is replaced
    trainer.train(resume_from_checkpoint=str(found) if found is not None else None)
    if callback.stopped_at is not None:
        raise Interrupted(callback.stopped_at, checkpoint.latest(out) or checkpoint.folder(out))
    from owstack.efficiency.opsdc.loading import save_hf

    final = save_hf(student, tokenizer, out / "final")
    return TrainResult(final=final, model=student, source=source, steps=trainer.state.global_step)
