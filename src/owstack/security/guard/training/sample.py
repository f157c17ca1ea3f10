"""One labelled text of a training or evaluation corpus."""

from __future__ import annotations

from dataclasses import dataclass

#: attack categories reported by the evaluation
CATEGORIES = (
    "direct",
    "indirect_document",
    "tool_result",
    "multilingual",
    "obfuscated",
    "exfiltration",
    "tool_poisoning",
)


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    label: int  # 1 attack, 0 benign
    category: str  # one of CATEGORIES for attacks; "benign_*" for benign text
    source: str  # where it comes from (generator, package name)
    lang: str = "en"
