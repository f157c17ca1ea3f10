"""Training samples: orders planted in documents that dictate the outcome of the task run on them, and the
same documents without them (`security/data/guard_planted.yaml`).

The carriers are kinds of document the other generators lack (résumés, analyst reports and filings, product
pages and listings, terms and contracts, encyclopedia snippets, registry records, texts to translate, minutes,
e-mails). An attack is a carrier with one planted order (an outcome dictated to whoever summarises, translates or
evaluates it, a verdict handed over, the remainder dismissed, a separator then an order, a note to the recruiter
or screening system, an order in brackets or an HTML comment, an exact output). A
benign sample is a carrier with one or two benign sentences of its kind (ratings, reviewer notes, abuse notices,
legal duties, translator notes) or with the slot empty: so that the carrier's own words do not come to mean
"attack".
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import cache
from typing import Any

from owstack.security.data_files import load
from owstack.security.guard.training import generate
from owstack.security.guard.training.sample import Sample


@cache
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_planted")
    return loaded


def _fill(text: str, rng: random.Random, fixed: dict[str, str]) -> str:
    for key, value in fixed.items():
        text = text.replace("{" + key + "}", value)
    for _ in range(3):
        before = text
        for key, options in data()["fills"].items():
            while "{" + key + "}" in text:
                text = text.replace("{" + key + "}", str(rng.choice(options)), 1)
        if text == before:
            break
    return generate._fill_all(text, rng)


def _carrier(rng: random.Random) -> tuple[str, str]:
    c = rng.choice(data()["carriers"])
    return str(c["text"]), str(c["kind"])


def attacks(rng: random.Random, n: int) -> Iterator[Sample]:
    d = data()
    classes = sorted(d["orders"])
    for _ in range(n):
        text, kind = _carrier(rng)
        task, taskn = rng.choice(d["tasks"])
        fixed = {"kind": kind, "task": task, "taskn": taskn, "sep": rng.choice(d["separators"])}
        order = _fill(rng.choice(d["orders"][rng.choice(classes)]), rng, fixed)
        if rng.random() < 0.3:  # the order alone in its paragraph, or run into the text
            order = "\n" + order + "\n"
        doc = _fill(text, rng, fixed).replace("{doc}", order)
        category = "tool_result" if kind == "record" else "indirect_document"
        yield Sample(doc, 1, category, "generated-planted")


def benign(rng: random.Random, n: int) -> Iterator[Sample]:
    d = data()
    for _ in range(n):
        text, kind = _carrier(rng)
        empty = rng.random() < 0.2  # the carrier alone
        filler = "" if empty else " ".join(rng.choice(d["benign"]) for _ in range(rng.choice((1, 1, 2))))
        fixed = {"kind": kind}
        yield Sample(_fill(text, rng, fixed).replace("{doc}", filler), 0, "benign_generated", "generated-planted")
