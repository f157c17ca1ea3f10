"""One fine-tuning run, start to finish: prepare (every check), load, train, write artifacts and lineage.

Every process of a multi-process run executes this same function; the base model's GGUF is dequantised
by the main process first (the others then load the cached folder), and only the main process writes the
run folder's files. A run folder that already holds a run is refused unless `resume` is set, and a resumed
run must use the same recipe (only `training.epochs` and `training.max_steps` may change).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owstack.finetune import base as base_model
from owstack.finetune import engine, lineage
from owstack.finetune.errors import FinetuneError
from owstack.finetune.plan import Plan, prepare
from owstack.finetune.recipe import LoadedRecipe

RECIPE_FILE = "recipe.json"
#: recipe fields a resumed run may change
_MAY_CHANGE = (("training", "epochs"), ("training", "max_steps"), ("out",))


class Interrupted(FinetuneError):
    def __init__(self, step: int, path: Path | None) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved in {path}")
        self.step, self.path = step, path


@dataclass(slots=True)
class Result:
    plan: Plan
    record: dict[str, Any] | None  # None on processes other than the main one
    trained: Any


def _comparable(recipe: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(recipe))
    for path in _MAY_CHANGE:
        node = data
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
    return data


def check_out(plan: Plan, resume: bool) -> None:
    out = plan.out
    saved = out / RECIPE_FILE
    has_run = saved.is_file() or (out / lineage.FILE).is_file()
    if not has_run:
        if resume:
            raise FinetuneError(f"--resume: {out} holds no run to resume; start again without --resume")
        return
    if not resume:
        raise FinetuneError(f"{out} already holds a run; pass --resume to continue it, or set another `out`")
    if (out / lineage.FILE).is_file():
        raise FinetuneError(f"--resume: the run in {out} has finished (lineage.json exists)")
    if engine.latest_checkpoint(out) is None:
        raise FinetuneError(f"--resume: {out} has no complete checkpoint yet; remove it and start again")
    before = _comparable(json.loads(saved.read_text("utf-8")))
    now = _comparable(plan.recipe.model_dump(mode="json", by_alias=True))
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        raise FinetuneError(f"--resume: the recipe differs from the run's in {', '.join(changed)}")


def _main_first() -> Any:
    from accelerate import PartialState

    return PartialState()


def load_base(plan: Plan) -> tuple[Path, Any, Any, list[str]]:
    """The base's HF folder, model and tokenizer, and the checked LoRA targets."""
    state = _main_first()
    with state.main_process_first():
        folder = base_model.hf_folder(plan.base)
    model, tokenizer = base_model.load(folder)
    targets = base_model.check_targets(model, plan.recipe.lora.targets) if plan.recipe.tuning == "lora" else []
    return folder, model, tokenizer, targets


def run(
    loaded: LoadedRecipe,
    *,
    resume: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    progress: bool = True,
    on_ready: Callable[[Plan], None] | None = None,
) -> Result:
    plan = prepare(loaded)
    check_out(plan, resume)
    folder, model, tokenizer, targets = load_base(plan)
    if on_ready is not None:
        on_ready(plan)
    state = _main_first()
    if state.is_main_process:
        plan.out.mkdir(parents=True, exist_ok=True)
        (plan.out / RECIPE_FILE).write_text(json.dumps(plan.recipe.model_dump(mode="json", by_alias=True)), "utf-8")
    started, clock = lineage.now(), time.monotonic()
    trained = engine.train(plan, model, tokenizer, targets, resume=resume, should_stop=should_stop, progress=progress)
    if trained.interrupted_at is not None:
        raise Interrupted(trained.interrupted_at, engine.latest_checkpoint(plan.out))
    record = None
    if state.is_main_process:
        from owstack.finetune.artifacts import finish

        record = finish(plan, trained, folder, started, time.monotonic() - clock)
    state.wait_for_everyone()
    return Result(plan, record, trained)
