"""`owstack eval finetune`: the base model against the tuned one on the run's held-out split.

Each held-out example's prompt is sent twice through the same engine, once plainly and once with the
adapter selected (the embedded llama.cpp engine with the run's GGUF adapter, or any OpenAI-compatible URL
such as the owstack gateway with `edge` vs `edge:<adapter>`), greedy, and the answer is scored against the
example's expected completion:

- `exact`: equal after trimming whitespace (and case, unless `case_sensitive`);
- `contains`: the expected text appears in the answer;
- `json_schema`: the answer (or the first JSON object in it) parses and validates against the schema.

Reported: accuracy of each with a 95% Wilson interval (owstack.efficiency.stats), the difference, the
items the tuning fixed and broke, and an exact McNemar test on those discordant pairs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from owstack.efficiency import stats
from owstack.efficiency.clients import Reply
from owstack.finetune.data import Example
from owstack.finetune.recipe import EvaluationSection

_JSON_OBJECT = re.compile(r"\{.*\}|\[.*\]", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Item:
    ref: str
    expected: str
    base: str
    tuned: str
    base_ok: bool
    tuned_ok: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scorer:
    def __init__(self, settings: EvaluationSection, root: Path) -> None:
        self.settings = settings
        self.schema: Any = None
        if settings.scorer == "json_schema" and settings.schema_file:
            path = Path(settings.schema_file)
            self.schema = json.loads((path if path.is_absolute() else root / path).read_text("utf-8"))

    def _fold(self, text: str) -> str:
        text = " ".join(text.split())
        return text if self.settings.case_sensitive else text.lower()

    def __call__(self, answer: str, expected: str) -> bool:
        kind = self.settings.scorer
        if kind == "exact":
            return self._fold(answer) == self._fold(expected)
        if kind == "contains":
            return self._fold(expected) in self._fold(answer)
        return self._valid_json(answer)

    def _valid_json(self, answer: str) -> bool:
        import jsonschema

        candidates = [answer.strip()] + [m.group(0) for m in _JSON_OBJECT.finditer(answer)]
        for text in candidates:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            try:
                jsonschema.validate(value, self.schema)
            except jsonschema.ValidationError:
                return False
            return True
        return False


def prompt_and_expected(example: Example) -> tuple[list[dict[str, Any]], str]:
    data = example.data
    answer = data.get("completion") or data.get("chosen") or []
    return list(data["prompt"]), "".join(m["content"] for m in answer)


def mcnemar_p(fixed: int, broken: int) -> float:
    """Two-sided exact McNemar test: the binomial probability of a split this uneven of the discordant pairs."""
    n = fixed + broken
    if n == 0:
        return 1.0
    k = min(fixed, broken)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def _side(items: list[Item], ok: Callable[[Item], bool]) -> dict[str, Any]:
    n, correct = len(items), sum(ok(i) for i in items)
    return {"correct": correct, "accuracy": correct / n if n else 0.0, "accuracy_ci": list(stats.wilson(correct, n))}


def summary(items: list[Item]) -> dict[str, Any]:
    fixed = sum(1 for i in items if i.tuned_ok and not i.base_ok)
    broken = sum(1 for i in items if i.base_ok and not i.tuned_ok)
    base, tuned = _side(items, lambda i: i.base_ok), _side(items, lambda i: i.tuned_ok)
    return {
        "n": len(items),
        "base": base,
        "tuned": tuned,
        "delta": round(tuned["accuracy"] - base["accuracy"], 4),
        "fixed": fixed,
        "broken": broken,
        "mcnemar_p": round(mcnemar_p(fixed, broken), 6),
    }


async def compare(
    examples: list[Example],
    complete: Callable[[list[dict[str, Any]], str | None], Any],
    adapter: str | None,
    scorer: Scorer,
    *,
    on_answer: Callable[[], None] | None = None,
) -> list[Item]:
    """Score each example without and with the adapter (`complete(messages, adapter) -> Reply`).

    All base answers first, then all tuned ones: the engine switches adapters once, not per row."""
    base: list[Reply] = []
    for example in examples:
        base.append(await complete(prompt_and_expected(example)[0], None))
        if on_answer is not None:
            on_answer()
    items = []
    for example, plain in zip(examples, base, strict=True):
        messages, expected = prompt_and_expected(example)
        tuned: Reply = await complete(messages, adapter)
        item = Item(
            example.ref,
            expected,
            plain.content,
            tuned.content,
            scorer(plain.content, expected),
            scorer(tuned.content, expected),
        )
        items.append(item)
        if on_answer is not None:
            on_answer()
    return items
