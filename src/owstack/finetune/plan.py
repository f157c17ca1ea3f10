"""Everything checked before training starts: recipe, base on disk, data rows, sovereignty, redaction, split.

`prepare(loaded)` reads no weights: it resolves the base model's file and digest, reads and validates every
data row (a bad row is a `DataError` with its file and line), refuses data that may not be processed in
the job's jurisdiction, redacts PII when asked, and splits off the held-out rows. The LoRA targets are
checked once the model is loaded (`base.check_targets`), still before the first step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owstack.finetune import base as base_model
from owstack.finetune import sovereignty
from owstack.finetune.data import Example, Source, read_examples, read_file, split
from owstack.finetune.errors import DataError
from owstack.finetune.recipe import LoadedRecipe


@dataclass(slots=True)
class Plan:
    loaded: LoadedRecipe
    base: base_model.Base
    train: list[Example]
    eval: list[Example]
    sources: list[Source]
    #: where the adapter may be served (every source allows these jurisdictions)
    serving_jurisdictions: list[str]
    redaction: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def recipe(self) -> Any:
        return self.loaded.recipe

    @property
    def out(self) -> Path:
        return self.loaded.out


def _read_sources(loaded: LoadedRecipe) -> tuple[list[Example], list[Example], list[Source]]:
    recipe = loaded.recipe
    data = recipe.data
    train: list[Example] = []
    held: list[Example] = []
    sources: list[Source] = []
    for name in data.train:
        examples, source = read_file(loaded.path(name), recipe.method, data.train_on, data.jurisdictions)
        train += examples
        sources.append(source)
    for name in data.eval:
        examples, source = read_file(loaded.path(name), recipe.method, data.train_on, data.jurisdictions)
        held += examples
        sources.append(source)
    if data.audit is not None:
        # checked here, before any record is decrypted: a tenant whose data may not come here is not read
        from owstack.finetune.audit_data import open_config, read_audit, tenant_section

        tenant = tenant_section(open_config(data.audit, loaded.root), data.audit.tenant)
        probe = Source(
            "audit", f"audit:{data.audit.tenant}", "", 0, 0, tenant.jurisdictions, {"tenant": data.audit.tenant}
        )
        sovereignty.check_compute(recipe.jurisdiction, [probe])
        rows = read_audit(data.audit, loaded.root, recipe.method, data.train_on)
        train += rows.examples
        sources.append(rows.source)
    return train, held, sources


def prepare(loaded: LoadedRecipe) -> Plan:
    recipe = loaded.recipe
    base = base_model.resolve(recipe.base, loaded.root)
    train, held, sources = _read_sources(loaded)
    sovereignty.check_compute(recipe.jurisdiction, sources)
    if not held:
        train, held = split(train, recipe.data.eval_split, recipe.training.seed)
    if not train:
        raise DataError("data: no training rows left after the held-out split; add rows or lower data.eval_split")
    plan = Plan(loaded, base, train, held, sources, sovereignty.serving_jurisdictions(sources))
    settings = recipe.data.redaction
    if settings is not None:
        from owstack.finetune.redact import Redactor

        redactor = Redactor(settings)
        plan.train = [redactor.example(e) for e in plan.train]
        plan.eval = [redactor.example(e) for e in plan.eval]
        plan.redaction = dict(sorted(redactor.counts.items()))
    return plan


def heldout(run: Path, loaded: LoadedRecipe) -> list[Example]:
    """The held-out rows a run recorded, audit references decrypted again (for `owstack eval finetune`)."""
    path = run / "heldout.jsonl"
    if not path.is_file():
        raise DataError(f"{run} has no heldout.jsonl (was it trained with an eval split?)")
    examples = read_examples(path)
    refs = {e.ref.removeprefix("audit:") for e in examples if not e.data and e.ref.startswith("audit:")}
    if not refs:
        return examples
    audit = loaded.recipe.data.audit
    if audit is None:
        raise DataError(f"{path.name}: holds audit references but the recipe has no data.audit source")
    from owstack.finetune.audit_data import read_audit

    found = {e.ref: e for e in read_audit(audit, loaded.root, "sft", loaded.recipe.data.train_on, refs).examples}
    return [e if e.data else found[e.ref] for e in examples if e.data or e.ref in found]
