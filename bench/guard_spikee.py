"""A held-out set from spikee's seed data (WithSecure's prompt-injection test kit, Apache-2.0, `spikee` on PyPI),
for `bench/guard_eval.py`; evaluation only: nothing in the guard's training, rules or thresholds reads it.

    pip download --no-deps -d /tmp/ds spikee==0.9.2
    (cd /tmp/ds && mkdir -p spikee && unzip -q -o spikee-*.whl -d spikee)

Built as spikee's own generator builds its datasets (`spikee generate`, generator.py `insert_jailbreak`): a
jailbreak's `<INSTRUCTION>` placeholder is filled with an instruction of the same language, and the result
is put into a base document at its placeholder, or else at the start, in the middle (at the whitespace
nearest the half) or at the end. Seed folders: `seeds-cybersec-2026-01`, `seeds-llm-mailbox`,
`seeds-sysmsg-extraction-2025-04` (English, and Zulu, Albanian, Irish and Scottish Gaelic). A fixed,
seeded sample of the combinations is taken (the full product is tens of thousands of near-duplicates).

Categories: in a document (a base document with content) `indirect_document`, or `multilingual` when the
jailbreak is not English; a base document that is only a placeholder makes a direct prompt (`direct`);
the base documents alone are benign (`benign_document`). The jailbreak texts and instructions were not read
for this: only the files' fields and counts.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from owstack.security.guard.training.sample import Sample

SEED_FOLDERS = ("seeds-cybersec-2026-01", "seeds-llm-mailbox", "seeds-sysmsg-extraction-2025-04")
POSITIONS = ("start", "middle", "end")
#: combinations kept per seed folder, as documents and as direct prompts
PER_FOLDER = 150


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _nearest_space(text: str, index: int) -> int:
    """The index of the whitespace nearest `index` (spikee's `find_nearest_whitespace`), or `index`."""
    for distance in range(len(text)):
        for at in (index - distance, index + distance):
            if 0 <= at < len(text) and text[at].isspace():
                return at
    return index


def _insert(document: str, payload: str, position: str, placeholder: str) -> str:
    if placeholder:
        return document.replace(placeholder, payload)
    if position == "start":
        return payload + document
    if position == "end":
        return document + payload
    at = _nearest_space(document, len(document) // 2)
    return document[:at] + payload + document[at:]


def samples(root: Path, *, seed: int = 7) -> list[Sample]:
    """The set, or [] when spikee is not unpacked under `root` (`root/spikee/spikee/data/...`)."""
    base = root / "spikee" / "spikee" / "data" / "workspace" / "datasets"
    if not base.is_dir():
        return []
    rng = random.Random(seed)
    out: list[Sample] = []
    for folder in SEED_FOLDERS:
        seeds = base / folder
        documents = [d for d in _rows(seeds / "base_user_inputs.jsonl") if d.get("document")]
        jailbreaks = _rows(seeds / "jailbreaks.jsonl")
        instructions = _rows(seeds / "instructions.jsonl")
        source = f"spikee/{folder}"
        for doc in documents:
            if doc["document"] != doc.get("placeholder"):
                out.append(Sample(str(doc["document"]), 0, "benign_document", source))
        combos = [
            (doc, jb, ins, pos)
            for doc in documents
            for jb in jailbreaks
            for ins in instructions
            if jb.get("lang", "en") == ins.get("lang", "en") and "<INSTRUCTION>" in str(jb.get("text", ""))
            for pos in (("fixed",) if doc.get("placeholder") else POSITIONS)
        ]
        for doc, jb, ins, pos in rng.sample(combos, min(PER_FOLDER, len(combos))):
            payload = str(jb["text"]).replace("<INSTRUCTION>", str(ins["instruction"]))
            placeholder = str(doc.get("placeholder") or "")
            text = _insert(str(doc["document"]), payload, pos, placeholder)
            if placeholder and doc["document"] == placeholder:
                category = "direct"
            else:
                category = "indirect_document" if jb.get("lang", "en") == "en" else "multilingual"
            out.append(Sample(text, 1, category, source, str(jb.get("lang", "en"))))
    return out
