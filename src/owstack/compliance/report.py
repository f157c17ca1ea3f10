"""What `audit verify` found: per-stream results, the damage, and the heads to anchor next time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from owstack.compliance.segments import read_json


@dataclass(slots=True)
class Damage:
    kind: str
    stream: str
    where: str
    seq: int | None
    message: str

    def line(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None and f"(seq {self.seq}" not in self.where else ""
        return f"stream {self.stream}, {self.where}{seq}: {self.kind}: {self.message}"


@dataclass(slots=True)
class StreamResult:
    stream: str
    records: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    first_time: str | None = None
    last_time: str | None = None
    last_checkpoint_seq: int | None = None
    #: sealed (clean shutdown), live (a writer holds it), crashed (no seal, no writer), empty
    state: str = "empty"
    unsigned_tail: int = 0
    torn: dict[str, Any] | None = None
    pruned_before_seq: int | None = None
    key_ids: list[str] = field(default_factory=list)
    damage: Damage | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    directory: str
    streams: list[StreamResult]
    missing: list[Damage] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        return self.missing + [s.damage for s in self.streams if s.damage is not None]

    @property
    def ok(self) -> bool:
        return not self.damage

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "directory": self.directory,
            "records": sum(s.records for s in self.streams),
            "checkpoints": sum(s.checkpoints for s in self.streams),
            "streams": [asdict(s) for s in self.streams],
            "damage": [asdict(d) for d in self.damage],
            "heads": {s.stream: {"seq": s.last_seq, "hash": s.last_hash} for s in self.streams if s.last_seq},
        }


def load_anchor(path: Path) -> dict[str, tuple[int, str]]:
    """The `heads` of an earlier `verify --json` report, kept where the log's writers cannot reach."""
    data = read_json(path)
    if data is None:
        raise ValueError(f"{path}: no such file")
    heads = data.get("heads", data)
    try:
        return {str(k): (int(v["seq"]), str(v["hash"])) for k, v in heads.items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: not a verify report (expected a `heads` object of stream -> seq, hash)") from None
