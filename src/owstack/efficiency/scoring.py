"""A lenient answer scorer: an `Answer:` line, else the last `\\boxed{}`, else the last number.

OPSDC's v1 accuracy gains came largely from a strict answer-format scorer; this one accepts any of the
three forms and reports a response with no number at all as a parse failure, apart from wrong answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Method = Literal["answer_line", "boxed", "last_number", "none"]

_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?|(?<![\w.])[-−]?\.\d+")
_ANSWER_LINE = re.compile(r"(?im)^[\s*>_-]*(?:####\s*(.*)|(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:：]\**\s*(.*))$")
_BOXED = re.compile(r"\\boxed\s*\{")


@dataclass(frozen=True, slots=True)
class Score:
    correct: bool
    parsed: float | None
    method: Method

    @property
    def parse_failure(self) -> bool:
        return self.parsed is None


def _to_number(token: str) -> float | None:
    cleaned = token.replace("−", "-").replace("$", "").replace(",", "")
    try:
        return float(cleaned)
    except ValueError:
        return None


def _last_number(text: str) -> float | None:
    for token in reversed(_NUMBER.findall(text)):
        value = _to_number(token)
        if value is not None:
            return value
    return None


def _first_number(text: str) -> float | None:
    for token in _NUMBER.findall(text):
        value = _to_number(token)
        if value is not None:
            return value
    return None


def _boxed_contents(text: str) -> list[str]:
    out = []
    for match in _BOXED.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[match.end() : i - 1])
    return out


def extract(text: str) -> tuple[float | None, Method]:
    """The answer a response gives and how it was found."""
    lines = [hashes or answer for hashes, answer in _ANSWER_LINE.findall(text)]
    for line in reversed(lines):
        boxed = _boxed_contents(line)
        value = _first_number(boxed[-1]) if boxed else _first_number(line)
        if value is not None:
            return value, "answer_line"
    for content in reversed(_boxed_contents(text)):
        value = _first_number(content)
        if value is not None:
            return value, "boxed"
    value = _last_number(text)
    return (value, "last_number") if value is not None else (None, "none")


def score(text: str, expected: float) -> Score:
    value, method = extract(text)
    correct = value is not None and abs(value - expected) < 1e-6 * max(1.0, abs(expected))
    return Score(correct=correct, parsed=value, method=method)
