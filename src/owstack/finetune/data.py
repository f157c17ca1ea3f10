"""Training data from local JSONL or Parquet files: every row checked before training, with its line.

`read_file` returns the examples of one file and its provenance (SHA-256 of the bytes, row count) for the
lineage record; `split` holds out rows (not examples, so one conversation never lands on both sides)
with the recipe's seed. A file that is missing, unreadable, empty or holds one bad row is a `DataError`
naming the file and line; nothing is trained on a partly valid file.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owstack.finetune.errors import DataError
from owstack.finetune.rows import Kind, normalise

SUFFIXES = (".jsonl", ".json", ".parquet")
#: the ref prefix of rows read from the audit log
AUDIT_REF = "audit:"


@dataclass(frozen=True, slots=True)
class Example:
    """One TRL example and the row it came from (`train.jsonl:17`, `audit:<event id>`)."""

    data: dict[str, Any]
    ref: str


@dataclass(slots=True)
class Source:
    """Where rows came from, for the lineage record (no content, only digests and counts)."""

    kind: str  # "file" or "audit"
    name: str
    sha256: str
    rows: int
    examples: int
    jurisdictions: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "sha256": self.sha256,
            "rows": self.rows,
            "examples": self.examples,
            "jurisdictions": list(self.jurisdictions),
            **self.details,
        }


@dataclass(slots=True)
class Dataset:
    train: list[Example]
    eval: list[Example]
    sources: list[Source]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonl_rows(path: Path) -> list[tuple[int, Any]]:
    rows = []
    with path.open("r", encoding="utf-8") as fh:
        try:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path.name}:{number}: not valid JSON ({exc.msg})") from None
        except UnicodeDecodeError:
            raise DataError(f"{path.name}: not UTF-8 text (a JSONL file is one JSON object per line)") from None
    return rows


def _parquet_rows(path: Path) -> list[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path.name}: reading Parquet needs pyarrow (pip install 'owstack[train]')") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path.name}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    return list(enumerate(table.to_pylist(), 1))


def read_file(path: Path, method: Kind, train_on: str, jurisdictions: Sequence[str]) -> tuple[list[Example], Source]:
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path.name}: use a .jsonl or .parquet file")
    raw = _parquet_rows(path) if path.suffix.lower() == ".parquet" else _jsonl_rows(path)
    if not raw:
        raise DataError(f"{path.name}: holds no rows")
    examples: list[Example] = []
    parquet = path.suffix.lower() == ".parquet"
    for number, row in raw:
        where = f"{path.name} row {number}" if parquet else f"{path.name}:{number}"
        examples += [Example(item, f"{path.name}:{number}") for item in normalise(row, where, method, train_on)]
    source = Source("file", str(path), sha256_file(path), len(raw), len(examples), tuple(jurisdictions))
    return examples, source


def split(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `share` of the rows (at least one when share > 0 and there are two rows or more)."""
    refs = list(dict.fromkeys(e.ref for e in examples))
    if share <= 0 or len(refs) < 2:
        return examples, []
    held = max(1, round(len(refs) * share))
    order = refs[:]
    random.Random(f"owstack-split:{seed}").shuffle(order)
    held_out = set(order[:held])
    return [e for e in examples if e.ref not in held_out], [e for e in examples if e.ref in held_out]


def write_jsonl(path: Path, examples: Sequence[Example]) -> None:
    """The held-out split for `owstack eval finetune` (owner-readable only: it may hold personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        tmp.chmod(0o600)
        for example in examples:
            # rows from the audit log are kept as references: their content is decrypted only inside a job
            row = {"ref": example.ref} if example.ref.startswith(AUDIT_REF) else {**example.data, "ref": example.ref}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_examples(path: Path) -> list[Example]:
    out = []
    for number, row in _jsonl_rows(path):
        if not isinstance(row, dict):
            raise DataError(f"{path.name}:{number}: not an example object")
        ref = str(row.pop("ref", f"{path.name}:{number}"))
        out.append(Example(row, ref))  # an audit ref has no data: evaluate.py decrypts it again
    return out
