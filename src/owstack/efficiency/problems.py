"""Generated problems with verifiable integer answers, in difficulty buckets, deterministic from a seed.

The templates live in `data/problems.yaml`. The same `(n, seed)` always yields the same problems, so two
policies (or a base and a distilled model) are compared on identical items.
"""

from __future__ import annotations

import ast
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

BUCKETS: tuple[str, ...] = ("easy", "medium", "hard")

_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}


@dataclass(frozen=True, slots=True)
class Problem:
    id: str
    bucket: str
    question: str
    answer: int


def evaluate(expression: str, values: dict[str, int]) -> int:
    """Integer arithmetic on names: + - * // and parentheses; nothing else is allowed."""

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id]
        raise ValueError(f"unsupported expression {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


@lru_cache(maxsize=1)
def templates() -> dict[str, list[dict[str, Any]]]:
    text = resources.files("owstack.efficiency").joinpath("data/problems.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    return {bucket: list(data["buckets"][bucket]) for bucket in BUCKETS}


def _instantiate(template: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    values: dict[str, int] = {}
    for name, (low, high) in template["vars"].items():
        values[name] = rng.randint(int(low), int(high))
    for name, expression in (template.get("derive") or {}).items():
        values[name] = evaluate(expression, values)
    question = template["text"].format(**values)
    return question, evaluate(template["answer"], values)


def generate(n: int, seed: int = 0, buckets: tuple[str, ...] = BUCKETS) -> list[Problem]:
    """`n` problems spread evenly over `buckets` (in turn: easy, medium, hard, easy, ...)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    unknown = [b for b in buckets if b not in BUCKETS]
    if unknown:
        raise ValueError(f"unknown bucket {unknown[0]!r}; the buckets are {', '.join(BUCKETS)}")
    rng = random.Random(f"owstack-problems:{seed}")
    table = templates()
    out: list[Problem] = []
    for i in range(n):
        bucket = buckets[i % len(buckets)]
        template = rng.choice(table[bucket])
        question, answer = _instantiate(template, rng)
        out.append(Problem(id=f"s{seed}-{i:04d}", bucket=bucket, question=question, answer=answer))
    return out
