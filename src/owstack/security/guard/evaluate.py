"""Measure the guard on the shipped labelled corpus (`security/data/guard_corpus.yaml`).

A sample counts as flagged when `scan_text` reports at least one finding of severity medium or above (the
guard stage's default threshold for recording a finding). Detection rate = flagged malicious / malicious;
false-positive rate = flagged benign / benign. Both are reported overall, per split and per category.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from owstack.security.data_files import load
from owstack.security.guard.detect import scan_text
from owstack.security.guard.types import at_least

THRESHOLD = "medium"


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def evaluate(split: str = "all", source: str = "tool") -> dict[str, Any]:
    """Detection and false-positive rates of `scan_text(text, source=source)` on the corpus."""
    samples = [s for s in load("guard_corpus")["samples"] if split == "all" or s["split"] == split]
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (label, category) -> [flagged, n]
    wrong: list[dict[str, str]] = []
    chars = 0
    start = time.perf_counter()
    for s in samples:
        findings = scan_text(s["text"], source=source)
        flagged = any(at_least(f.severity, THRESHOLD) for f in findings)
        chars += len(s["text"])
        entry = counts[(s["label"], s["category"])]
        entry[0] += int(flagged)
        entry[1] += 1
        if flagged != (s["label"] == "malicious"):
            wrong.append(
                {
                    "id": s["id"],
                    "split": s["split"],
                    "text": s["text"][:120],
                    "rules": ",".join(sorted({f.rule for f in findings if at_least(f.severity, THRESHOLD)})),
                }
            )
    elapsed = time.perf_counter() - start

    def total(label: str) -> tuple[int, int]:
        pairs = [v for (lab, _), v in counts.items() if lab == label]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    tp, n_mal = total("malicious")
    fp, n_ben = total("benign")
    return {
        "split": split,
        "threshold": THRESHOLD,
        "malicious": n_mal,
        "benign": n_ben,
        "detected": tp,
        "false_positives": fp,
        "detection_rate": _rate(tp, n_mal),
        "false_positive_rate": _rate(fp, n_ben),
        "by_category": {
            f"{lab}/{cat}": {"flagged": v[0], "total": v[1], "rate": _rate(v[0], v[1])}
            for (lab, cat), v in sorted(counts.items())
        },
        "scan_chars_per_s": int(chars / elapsed) if elapsed else 0,
        "detectors": _detectors(),
        "wrong": wrong,
    }


def _detectors() -> str:
    """Which classifier detectors ran (the embedding one is opt-in and needs the wordllama package)."""
    from owstack.security.guard import classifier

    if classifier.model().embedding is not None:
        return "rules; n-gram, structural and embedding (WordLlama) classifiers"
    if not classifier.embedding_enabled():
        return (
            f"rules; n-gram and structural classifiers (embedding detector off; opt in: {classifier.EMBEDDING_ENV}=1)"
        )
    return "rules; n-gram and structural classifiers (embedding detector off: wordllama is not installed)"


def format_report(result: dict[str, Any], *, misses: bool = False) -> str:
    lines = [
        f"guard corpus, split {result['split']}, flagged at severity >= {result['threshold']}",
        f"  detectors            {result['detectors']}",
        f"  detection rate       {result['detection_rate']:.1%}  ({result['detected']}/{result['malicious']} "
        "malicious)",
        f"  false-positive rate  {result['false_positive_rate']:.1%}  ({result['false_positives']}/{result['benign']} "
        "benign)",
        "  by category:",
    ]
    for name, v in result["by_category"].items():
        lines.append(f"    {name:32} {v['flagged']:3}/{v['total']:<3} flagged")
    if misses:
        lines.append("  wrong:")
        lines.extend(f"    {w['id']} [{w['split']}] {w['rules'] or '-'}: {w['text']!r}" for w in result["wrong"])
    return "\n".join(lines)
