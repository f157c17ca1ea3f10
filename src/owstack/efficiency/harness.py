"""The efficiency harness: run problems through a backend under a policy, score them, summarise.

problems = generate(60, seed=0)
results = await run(completer, problems, policy, max_tokens=256, temperature=0.0, seed=0)
summary = summarize(results)            # accuracy + Wilson CI, tokens, truncation, per bucket
compare(results, baseline_results)      # compression with a paired bootstrap CI
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from owstack.efficiency import stats
from owstack.efficiency.clients import Completer
from owstack.efficiency.policies import Policy
from owstack.efficiency.problems import BUCKETS, Problem
from owstack.efficiency.scoring import score


@dataclass(frozen=True, slots=True)
class ItemResult:
    id: str
    bucket: str
    policy: str
    expected: int
    parsed: float | None
    method: str
    correct: bool
    completion_tokens: int | None
    reasoning_tokens: int
    finish_reason: str | None
    latency_s: float
    answer: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    correct: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    parse_failures: int
    mean_completion_tokens: float
    median_completion_tokens: float
    mean_reasoning_tokens: float
    truncation_rate: float
    #: items whose backend reported no token count (left out of the token means)
    missing_usage: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["accuracy_ci"] = list(self.accuracy_ci)
        return out


def messages_for(problem: Problem) -> list[dict[str, Any]]:
    """The student prompt: the plain problem as one user message (the policy adds anything else)."""
    return [{"role": "user", "content": problem.question}]


async def run(
    completer: Completer,
    problems: Sequence[Problem],
    policy: Policy | None,
    *,
    max_tokens: int = 256,
    temperature: float = 0.0,
    seed: int = 0,
    concurrency: int = 1,
    on_done: Callable[[ItemResult], None] | None = None,
) -> list[ItemResult]:
    """Every problem once, at most `concurrency` at a time; results in problem order."""
    gate = asyncio.Semaphore(max(1, concurrency))
    label = str(policy) if policy is not None else "default"

    async def one(index: int, problem: Problem) -> ItemResult:
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed + index}
        async with gate:
            started = time.perf_counter()
            reply = await completer.complete(messages_for(problem), params, policy)
            elapsed = time.perf_counter() - started
        result_score = score(reply.content, problem.answer)
        item = ItemResult(
            id=problem.id,
            bucket=problem.bucket,
            policy=label,
            expected=problem.answer,
            parsed=result_score.parsed,
            method=result_score.method,
            correct=result_score.correct,
            completion_tokens=reply.completion_tokens,
            reasoning_tokens=reply.reasoning_tokens,
            finish_reason=reply.finish_reason,
            latency_s=round(elapsed, 4),
            answer=reply.content,
        )
        if on_done is not None:
            on_done(item)
        return item

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(problems))))


def summarize(results: Sequence[ItemResult]) -> Summary:
    n = len(results)
    correct = sum(r.correct for r in results)
    tokens = [float(r.completion_tokens) for r in results if r.completion_tokens is not None]
    return Summary(
        n=n,
        correct=correct,
        accuracy=correct / n if n else 0.0,
        accuracy_ci=stats.wilson(correct, n),
        parse_failures=sum(r.parsed is None for r in results),
        mean_completion_tokens=round(stats.mean(tokens), 2),
        median_completion_tokens=stats.median(tokens),
        mean_reasoning_tokens=round(stats.mean([float(r.reasoning_tokens) for r in results]), 2),
        truncation_rate=sum(r.finish_reason == "length" for r in results) / n if n else 0.0,
        missing_usage=n - len(tokens),
    )


def by_bucket(results: Sequence[ItemResult]) -> dict[str, Summary]:
    out = {}
    for bucket in BUCKETS:
        items = [r for r in results if r.bucket == bucket]
        if items:
            out[bucket] = summarize(items)
    return out


def compare(results: Sequence[ItemResult], baseline: Sequence[ItemResult], *, seed: int = 0) -> dict[str, Any]:
    """Compression (1 - mean tokens / baseline mean tokens) on the items both runs have token counts for."""
    base = {r.id: r for r in baseline}
    pairs = [
        (float(r.completion_tokens), float(base[r.id].completion_tokens or 0))
        for r in results
        if r.id in base and r.completion_tokens is not None and base[r.id].completion_tokens is not None
    ]
    policy_tokens = [p for p, _ in pairs]
    base_tokens = [b for _, b in pairs]
    low, high = stats.paired_bootstrap(policy_tokens, base_tokens, seed=seed)
    acc = summarize(results).accuracy - summarize(baseline).accuracy if results and baseline else 0.0
    return {
        "compression": round(stats.compression(policy_tokens, base_tokens), 4),
        "compression_ci": [round(low, 4), round(high, 4)],
        "accuracy_delta": round(acc, 4),
        "pairs": len(pairs),
    }


def load_items(path: Path, policy: str) -> list[ItemResult]:
    """Per-item results saved with `--out`, for one policy (to compare another model on the same items)."""
    names = set(ItemResult.__slots__)
    items = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            if data.get("policy") == policy:
                items.append(ItemResult(**{k: v for k, v in data.items() if k in names}))
    return items


def report(results: Sequence[ItemResult], baseline: Sequence[ItemResult] | None, *, seed: int = 0) -> dict[str, Any]:
    """The `--json` object: the policy's summary at the top level, buckets, and the baseline comparison."""
    out: dict[str, Any] = {"policy": results[0].policy if results else None, **summarize(results).to_dict()}
    out["buckets"] = {k: v.to_dict() for k, v in by_bucket(results).items()}
    if baseline is not None:
        out["baseline"] = {
            "policy": baseline[0].policy if baseline else None,
            **summarize(baseline).to_dict(),
        }
        out["baseline"]["buckets"] = {k: v.to_dict() for k, v in by_bucket(baseline).items()}
        out["compression"] = compare(results, baseline, seed=seed)
        out["compression"]["buckets"] = {
            bucket: compare(
                [r for r in results if r.bucket == bucket],
                [r for r in baseline if r.bucket == bucket],
                seed=seed,
            )
            for bucket in out["buckets"]
        }
    return out
