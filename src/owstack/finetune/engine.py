"""The training engine: TRL's SFTTrainer or DPOTrainer, with PEFT LoRA or full weights, under Accelerate.

The same code runs in one CPU process and under `accelerate launch` / `torchrun` on several processes or
GPUs (DDP, FSDP or DeepSpeed from the launcher's config): the Trainer reads the distributed environment;
`per_device_train_batch_size` is the recipe's batch size divided by the number of processes, so the global
batch, and with it the learning dynamics, stay the same when a run scales out.

Checkpoints (`checkpoints/checkpoint-N`, the two newest kept) hold the adapter or weights, optimizer,
scheduler, RNG states and trainer state; `resume=True` continues from the newest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack.finetune.data import Example
from owstack.finetune.errors import FinetuneError
from owstack.finetune.plan import Plan

CHECKPOINTS = "checkpoints"


@dataclass(slots=True)
class Trained:
    trainer: Any
    model: Any
    tokenizer: Any
    metrics: dict[str, Any]
    interrupted_at: int | None = None


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _dataset(examples: list[Example]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([e.data for e in examples])


def _common_args(plan: Plan, world: int) -> dict[str, Any]:
    t = plan.recipe.training
    if t.batch_size % world:
        raise FinetuneError(f"training.batch_size ({t.batch_size}) must be a multiple of the {world} processes")
    report = ["tensorboard"] if t.tensorboard else []
    if t.tensorboard:
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(plan.out / "tensorboard")
    return {
        "output_dir": str(plan.out / CHECKPOINTS),
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "learning_rate": t.lr,
        "per_device_train_batch_size": t.batch_size // world,
        "per_device_eval_batch_size": max(1, t.batch_size // world),
        "gradient_accumulation_steps": t.grad_accum,
        "warmup_steps": t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": t.weight_decay,
        "lr_scheduler_type": t.scheduler,
        "seed": t.seed,
        "data_seed": t.seed,
        "max_length": t.max_length,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": t.checkpoint_every,
        "save_total_limit": 2,
        "report_to": report,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "use_cpu": not _cuda(),
        "ddp_backend": None if _cuda() else ("gloo" if world > 1 else None),
    }


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _lora_config(plan: Plan, targets: list[str]) -> Any:
    from peft import LoraConfig

    lora = plan.recipe.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets[0] if targets == ["all-linear"] else targets,
        use_rslora=lora.rslora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def build(plan: Plan, model: Any, tokenizer: Any, targets: list[str], callbacks: list[Any]) -> Any:
    """The TRL trainer for the plan's method and tuning."""
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    common = _common_args(plan, world_size())
    peft = _lora_config(plan, targets) if plan.recipe.tuning == "lora" else None
    train = _dataset(plan.train)
    held = _dataset(plan.eval) if plan.eval else None
    if plan.recipe.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        dpo_args = DPOConfig(**common, beta=plan.recipe.training.beta)
        return DPOTrainer(
            model=model, args=dpo_args, train_dataset=train, eval_dataset=held,
            processing_class=tokenizer, peft_config=peft, callbacks=callbacks,
        )  # fmt: skip
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**common, completion_only_loss=True)
    return SFTTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=held,
        processing_class=tokenizer, peft_config=peft, callbacks=callbacks,
    )  # fmt: skip


def latest_checkpoint(out: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = get_last_checkpoint(str(folder))
    return Path(found) if found else None


def train(
    plan: Plan,
    model: Any,
    tokenizer: Any,
    targets: list[str],
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = True,
) -> Trained:
    from owstack.finetune.callbacks import MetricsLog, RichProgress, StopOnRequest

    threads = plan.recipe.training.threads
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    stop = StopOnRequest(should_stop)
    callbacks: list[Any] = [MetricsLog(plan.out / "metrics.jsonl"), stop]
    if progress:
        callbacks.append(RichProgress(f"{plan.recipe.method} {plan.recipe.name}"))
    trainer = build(plan, model, tokenizer, targets, callbacks)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the progress bar and metrics.jsonl show the same, once
    checkpoint = latest_checkpoint(plan.out) if resume else None
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics: dict[str, Any] = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    metrics["global_step"] = trainer.state.global_step
    if stop.stopped_at is None and plan.eval:
        metrics.update({k: v for k, v in trainer.evaluate().items() if isinstance(v, int | float)})
    return Trained(trainer, trainer.model, tokenizer, metrics, stop.stopped_at)
