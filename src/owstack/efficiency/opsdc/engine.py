"""OPSDC on the transformers Trainer: the same engine as `owstack finetune`, so it scales the same way.

`OPSDCTrainer` replaces only the training step: sample the step's rollouts from the student, then in
micro-batches back-propagate the exact reverse KL summed over response tokens divided by the step's
response tokens over every process (all-reduced; DDP averages gradients over processes, so each process
scales by world size / global tokens): the gradient of the token mean of the whole global batch, as on
one process. The Trainer supplies the rest: the data order (sequential: `batch_at` fixed the seeded
order), gradient clipping, the AdamW step, checkpoints, RNG restore, `accelerate launch` / `torchrun`.

`OPSDCCallback` refreshes the teacher every M steps, writes `log.jsonl`, saves the teacher in each
checkpoint, and stops (with a checkpoint) when asked.

This module imports torch and transformers: import it only on the training path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from owstack.efficiency.opsdc import checkpoint
from owstack.efficiency.opsdc.loss import reverse_kl_sum
from owstack.efficiency.opsdc.rollout import response_logits, rollout


class Questions(torch.utils.data.Dataset[dict[str, str]]):
    def __init__(self, questions: list[str]) -> None:
        self.questions = questions

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, index: int) -> dict[str, str]:
        return {"question": self.questions[index]}


def collate(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    return {"question": [r["question"] for r in rows]}


class OPSDCTrainer(Trainer):
    def __init__(self, *args: Any, teacher: Any, opsdc: Any, system: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher, self.opsdc, self.system = teacher, opsdc, system
        self.last: dict[str, Any] = {}

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        return torch.utils.data.SequentialSampler(dataset)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        cfg, started = self.opsdc, time.perf_counter()
        student = self.accelerator.unwrap_model(model)
        questions = inputs["question"]
        batches = [
            rollout(student, self.processing_class, questions[i : i + cfg.micro_batch], self.system,
                    max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
            for i in range(0, len(questions), cfg.micro_batch)
        ]  # fmt: skip
        local = float(sum(int(b.response_mask.sum()) for b in batches))
        world = self.accelerator.num_processes
        tokens = max(1.0, float(self.accelerator.reduce(torch.tensor(local), reduction="sum"))) / world
        total = 0.0
        for b in batches:
            with torch.no_grad():
                t_logits = response_logits(self.teacher, b.teacher_ids, b.teacher_mask, b.teacher_prompt_len,
                                           b.response_len)  # fmt: skip
            s_logits = response_logits(model, b.student_ids, b.student_mask, b.prompt_len, b.response_len)
            kl_sum = reverse_kl_sum(s_logits, t_logits, b.response_mask)
            (kl_sum / tokens).backward()
            total += float(kl_sum.detach())
        lengths = [n for b in batches for n in b.response_mask.sum(dim=1).tolist()]
        self.last = {
            "kl": total / max(1.0, local),
            "rollout_len": sum(lengths) / len(lengths),
            "truncated": sum(int((~b.finished).sum()) for b in batches) / len(lengths),
            "started": started,
        }
        return torch.tensor(total / max(1.0, local))


class OPSDCCallback(TrainerCallback):
    def __init__(
        self,
        trainer: OPSDCTrainer,
        log: Path,
        should_stop: Callable[[], bool],
        on_step: Callable[[Any], None] | None,
        entry: Callable[..., Any],
        state: dict[str, Any],
    ) -> None:
        self.trainer, self.log, self.should_stop, self.on_step = trainer, log, should_stop, on_step
        self.entry, self.state = entry, state
        self.refreshed = False
        self.stopped_at: int | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        m = self.trainer.opsdc.teacher_refresh
        self.refreshed = bool(m) and state.global_step % m == 0
        if self.refreshed:
            student = self.trainer.accelerator.unwrap_model(self.trainer.model)
            self.trainer.teacher.load_state_dict(student.state_dict())
            self.state["refreshes"] = int(self.state.get("refreshes", 0)) + 1
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> Any:
        last = self.trainer.last
        if not logs or "loss" not in logs or not last:
            return control
        entry = self.entry(
            step=state.global_step,
            loss=last["kl"],
            kl=last["kl"],
            rollout_len=last["rollout_len"],
            truncated=last["truncated"],
            grad_norm=float(logs.get("grad_norm", 0.0)),
            teacher_refresh=self.refreshed,
            seconds=round(time.perf_counter() - last["started"], 2),
        )
        if state.is_world_process_zero:
            with self.log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(entry)) + "\n")
        if self.on_step is not None:
            self.on_step(entry)
        if self.should_stop() and state.global_step < state.max_steps:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            checkpoint.save_teacher(path, self.trainer.teacher, self.state)
        return control
