"""Train the guard classifier and write `security/data/guard_model.npz`.

    python -m owstack.security.guard.training.train --external /tmp/ds      # see training/external.py

Logistic regression with L2 over the hashed features of `features.buckets`, full-batch Adam in numpy,
class-balanced. The corpus: the synthetic generators (`generate`), promptinject, AgentDojo's workspace and
slack environments, agentprobe-injection's carriers and transforms, and half of the installed packages'
documentation, and tool descriptions (`tooldocs`: benign tool, API, CLI, UI and operator text, the
training half of the installed packages' docstrings, and poisoned tool descriptions). 10% of it (random, seeded) is
kept apart to choose the thresholds: `high` at the lowest probability that keeps false positives on that
validation split at or below 1%, `medium` at 5%. The evaluation sets (`bench/guard_eval.py`) are never
read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

from owstack.security.guard import classifier
from owstack.security.guard.features import DIM, STRUCT_DIM, featurize
from owstack.security.guard.training import external, generate, tooldocs
from owstack.security.guard.training.sample import Sample

SEED = 20261202
#: extra L2 on the structural weights, so no single signal decides alone
STRUCT_L2 = 3e-3
#: the structural features of the texts featurised so far (small: a few indices per text)
_STRUCTURE: dict[str, np.ndarray] = {}


def corpus(root: Path, seed: int = SEED) -> list[Sample]:
    rng = random.Random(seed)
    openers = list(generate.data()["openers"])
    site = Path(sysconfig.get_paths()["purelib"])
    samples = [
        *generate.attacks(rng, 9000),
        *generate.benign(rng, 7000),
        *generate.indirect(rng, 7000),
        *generate.indirect_benign(rng, 7000),
        *external.promptinject(root),
        *external.agentdojo(root, ("workspace", "slack"), openers, seed),
        *external.agentprobe(root, [generate.request(rng) for _ in range(12)], seed),
        *external.package_docs(site, test=False, limit=4000),
        *external.package_docs(site, test=False, limit=3000, keywords=False),
        *external.python_sources(site, test=False, limit=3000, seed=seed),
        *tooldocs.benign(rng, 6000),
        *tooldocs.poisoned(rng, 2500),
        *tooldocs.docstrings(site, test=False, limit=3000, seed=seed),
        # more of the generated attacks (their own stream): direct imperatives against the many new
        # benign imperatives above, so "short imperative" alone does not come to mean benign
        *generate.attacks(random.Random(seed + 1), 5000),
    ]
    return [s for s in samples if s.text.strip()]


def _matrix(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CSR matrix: each row's n-gram buckets (value 1/sqrt(n)) and structural signals (value 1)."""
    rows = [featurize(s.text) for s in samples]
    _STRUCTURE.update((s.text, r[1]) for s, r in zip(samples, rows, strict=True))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(a) + len(b) for a, b in rows])
    indices = np.concatenate([np.concatenate([a, DIM + b]) for a, b in rows]).astype(np.int64)
    values = np.concatenate(
        [
            np.concatenate(
                [np.full(len(a), 1 / math.sqrt(max(len(a), 1)), dtype=np.float32), np.ones(len(b), np.float32)]
            )
            for a, b in rows
        ]
    )
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
    w = np.zeros(DIM + STRUCT_DIM, dtype=np.float32)
    b = 0.0
    m, v = np.zeros_like(w), np.zeros_like(w)
    mb = vb = 0.0
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-_scores(w, b, indptr, indices, values)))
        g = (p - y) * weight / len(samples)
        gw = np.bincount(indices, weights=g[row_of] * values, minlength=DIM + STRUCT_DIM).astype(np.float32) + l2 * w
        gw[DIM:] += STRUCT_L2 * w[DIM:]  # the few structural weights see every sample: kept small
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


def fit_structure(
    samples: list[Sample], *, l2: float = 1e-3, steps: int = 400, lr: float = 0.05
) -> tuple[np.ndarray, float]:
    """The structural detector: logistic regression on the structural signals alone (dense, STRUCT_DIM
    columns). It cannot memorise phrases, so it scores any text with the shape of an injection."""
    x = _structure_matrix(samples)
    y = np.array([s.label for s in samples], dtype=np.float32)
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)).astype(np.float32)
    w = np.zeros(STRUCT_DIM, dtype=np.float32)
    b = 0.0
    m, v = np.zeros_like(w), np.zeros_like(w)
    mb = vb = 0.0
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * weight / len(samples)
        gw = x.T @ g + l2 * w
        gb = float(g.sum())
        m = 0.9 * m + 0.1 * gw
        v = 0.999 * v + 0.001 * gw * gw
        w -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        mb = 0.9 * mb + 0.1 * gb
        vb = 0.999 * vb + 0.001 * gb * gb
        b -= lr * (mb / (1 - 0.9**t)) / (math.sqrt(vb / (1 - 0.999**t)) + 1e-8)
    return w, b


def _structure_matrix(samples: list[Sample]) -> np.ndarray:
    x = np.zeros((len(samples), STRUCT_DIM), dtype=np.float32)
    for i, s in enumerate(samples):
        struct = _STRUCTURE.get(s.text)
        x[i, struct if struct is not None else featurize(s.text)[1]] = 1.0
    return x


def structure_probabilities(w: np.ndarray, b: float, samples: list[Sample]) -> np.ndarray:
    return 1 / (1 + np.exp(-(_structure_matrix(samples) @ w + b)))


def calibrate(m: classifier.Model, valid: list[Sample]) -> tuple[dict[str, float], str]:
    """Each detector's thresholds on the validation split, scored exactly as at run time (windows and
    chunks): `high` at <= 1% false positives on the real-world benign texts and the generated hard
    negatives about instructions, `medium` at 5%."""
    labels = np.array([s.label for s in valid])
    negatives = np.array([s.label == 0 and s.source != "generated" for s in valid])
    if not negatives.any():
        negatives = labels == 0
    scored = np.array([classifier.raw_max(m, w) for s in valid for w in classifier.windows(s.text)[:1]])
    p, ps = 1 / (1 + np.exp(-scored[:, 0])), 1 / (1 + np.exp(-scored[:, 1]))
    high, medium = threshold_for(p[negatives], 0.01), threshold_for(p[negatives], 0.05)
    structure_high = threshold_for(ps[negatives], 0.01)
    flagged = (p >= high) | (ps >= structure_high)
    summary = (
        f"validation: recall {flagged[labels == 1].mean():.3f}, false positives {flagged[negatives].mean():.3f} "
        f"at thresholds {high:.3f} / {structure_high:.3f}"
    )
    return {"threshold": high, "threshold_medium": medium, "structure_threshold": structure_high}, summary


def save(path: Path, m: classifier.Model) -> None:
    np.savez_compressed(
        path,
        weights=m.weights.astype(np.float16),
        bias=np.float32(m.bias),
        threshold=np.float32(m.threshold),
        threshold_medium=np.float32(m.threshold_medium),
        structure_weights=m.structure_weights.astype(np.float32),
        structure_bias=np.float32(m.structure_bias),
        structure_threshold=np.float32(m.structure_threshold),
        about=np.array(m.about),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--external", type=Path, required=True, help="folder with the unpacked wheels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "data" / "guard_model.npz")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--recalibrate", action="store_true", help="keep the shipped weights, redo the thresholds")
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
    if args.recalibrate:
        m = classifier.model()
    else:
        w, b = fit(train, steps=args.steps)
        sw, sb = fit_structure(train)
        m = classifier.Model(w, b, 0.5, 0.3, "", sw, sb, 0.5)
    thresholds, summary = calibrate(m, valid)
    about = (
        f"logistic regression, {DIM} hashed n-gram and {STRUCT_DIM} structural features, and a structural "
        f"detector; {len(train)} samples (seed {SEED}); {summary}; trained {time.strftime('%Y-%m-%d')}"
    )
    m = dataclasses.replace(
        m,
        about=about,
        threshold=thresholds["threshold"],
        threshold_medium=thresholds["threshold_medium"],
        structure_threshold=thresholds["structure_threshold"],
    )
    save(args.out, m)
    print(f"{about}; wrote {args.out} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
