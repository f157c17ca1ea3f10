"""Train the guard classifier and write `security/data/guard_model.npz`.

    python -m owstack.security.guard.training.train --external /tmp/ds      # see training/external.py

Logistic regression with L2 over the hashed features of `features.buckets`, full-batch Adam in numpy,
class-balanced. The corpus: the synthetic generators (`generate`), promptinject, AgentDojo's workspace and
slack environments, agentprobe-injection's carriers and transforms, and half of the installed packages'
documentation, and tool descriptions (`tooldocs`: benign tool, API, CLI, UI and operator text, the
training half of the installed packages' docstrings, and poisoned tool descriptions), and orders planted in
documents that dictate the outcome of the task run on them (`planted`). 10% of it (random, seeded) is
kept apart to choose the thresholds: `high` at the lowest probability that keeps false positives on that
validation split at or below 1%, `medium` at 5%. The evaluation sets (`bench/guard_eval.py`) are never
read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import numpy as np

from owstack.security.guard import classifier, embed
from owstack.security.guard.features import DIM, STRUCT_DIM, featurize
from owstack.security.guard.training import external, generate, planted, system_text, tooldocs
from owstack.security.guard.training.sample import Sample

SEED = 20261202
#: extra L2 on the structural weights, so no single signal decides alone
STRUCT_L2 = 3e-3
#: the embedding detector: hidden units, dropout, and the false-positive rate its threshold allows on
#: the validation split's benign texts
EMBED_HIDDEN = 16
EMBED_MEMBERS = 5
EMBED_DROPOUT = 0.3
EMBED_FP = 0.005
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
        *generate.hard_negatives(random.Random(seed + 2), 6000),
        # orders planted in résumés, reports, product pages, terms, snippets, registry records, texts to
        # translate, and the same documents without them (`planted`)
        *planted.attacks(random.Random(seed + 3), 3000),
        *planted.benign(random.Random(seed + 4), 3000),
        *external.promptinject(root),
        *external.agentdojo(root, ("workspace", "slack"), openers, seed),
        *external.agentprobe(root, [generate.request(rng) for _ in range(12)], seed),
        *external.package_docs(site, test=False, limit=4000),
        *external.package_docs(site, test=False, limit=3000, keywords=False),
        *external.python_sources(site, test=False, limit=3000, seed=seed),
        *tooldocs.benign(rng, 6000),
        *tooldocs.poisoned(rng, 2500),
        *tooldocs.docstrings(site, test=False, limit=3000, seed=seed),
        # real text about systems, options that ignore or override things, and UI messages in many
        # languages (the host's manual pages and gettext catalogues, training half)
        *system_text.man_pages(test=False, limit=3000, seed=seed),
        *system_text.man_pages(test=False, limit=2000, keywords=False, seed=seed + 1),
        *system_text.translations(test=False, limit=4000, seed=seed),
        *system_text.man_pages(test=False, limit=3000, seed=seed, translated=True),
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


def embedding_rows(samples: list[Sample]) -> list[Sample]:
    """What the embedding detector learns from: each sample's first window and, for benign ones, also
    each chunk of that window (at run time a text is scored by its most suspicious chunk, so no chunk
    of a benign text may look like an injection; the chunks of an attack need not carry it)."""
    out: list[Sample] = []
    for s in samples:
        window = classifier.windows(s.text)[0]
        out.append(dataclasses.replace(s, text=window))
        if s.label == 0:
            out.extend(dataclasses.replace(s, text=c) for c in classifier.chunks(window))
    return out


def _embedding_inputs(rows: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Pooled word vectors of each row, and its structural indicators (dense)."""
    pooled = np.concatenate([embed.vectors([s.text for s in rows[i : i + 512]]) for i in range(0, len(rows), 512)])
    return pooled, _structure_matrix(rows)


def fit_embedding(
    samples: list[Sample],
    *,
    hidden: int = EMBED_HIDDEN,
    members: int = EMBED_MEMBERS,
    epochs: int = 3,
    lr: float = 2e-3,
    l2: float = 1e-2,
    seed: int = SEED,
) -> classifier.EmbeddingHead:
    """The embedding detector: an average of `members` MLPs (one hidden ReLU layer each, different random
    starts and batch orders) over the standardised pooled WordLlama vectors and the structural indicators,
    class-balanced logistic loss, minibatch Adam in numpy. The average is one MLP with `members * hidden`
    hidden units (the output weights divided by `members`); averaging steadies its scores on text unlike
    the training data, where a single MLP's vary from one random start to the next."""
    samples = embedding_rows(samples)
    pooled, struct = _embedding_inputs(samples)
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0) + 1e-3
    x = np.concatenate([(pooled - mean) / scale, struct], axis=1).astype(np.float32)
    y = np.array([s.label for s in samples], dtype=np.float32)
    parts = [_fit_mlp(x, y, hidden=hidden, epochs=epochs, lr=lr, l2=l2, seed=seed + i) for i in range(members)]
    return classifier.EmbeddingHead(
        mean,
        scale,
        np.concatenate([p[0] for p in parts], axis=1),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]) / members,
        float(np.mean([p[3] for p in parts])),
        0.5,
    )


def _fit_mlp(
    x: np.ndarray, y: np.ndarray, *, hidden: int, epochs: int, lr: float, l2: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    pos = y.mean()
    weight = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos)).astype(np.float32)
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((x.shape[1], hidden)) * math.sqrt(2 / x.shape[1])).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.standard_normal(hidden) * math.sqrt(1 / hidden)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    params = [w1, b1, w2, b2]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), 256):
            batch = order[start : start + 256]
            xb, yb, wb = x[batch], y[batch], weight[batch]
            h_pre = xb @ w1 + b1
            h = np.maximum(h_pre, 0)
            if EMBED_DROPOUT:
                keep = (rng.random(h.shape) >= EMBED_DROPOUT).astype(np.float32) / (1 - EMBED_DROPOUT)
                h = h * keep
            z = h @ w2 + b2[0]
            p = 1 / (1 + np.exp(-np.clip(z, -40, 40)))
            total += float(-(wb * (yb * np.log(p + 1e-9) + (1 - yb) * np.log(1 - p + 1e-9))).sum())
            g = ((p - yb) * wb / len(batch)).astype(np.float32)
            gw2 = h.T @ g + l2 * w2
            gb2 = np.array([g.sum()], np.float32)
            gh = np.outer(g, w2) * (h_pre > 0)
            if EMBED_DROPOUT:
                gh = gh * keep
            gw1 = xb.T @ gh + l2 * w1
            gb1 = gh.sum(axis=0)
            t += 1
            for param, grad, (m, v) in zip(params, [gw1, gb1, gw2, gb2], moments, strict=True):
                m *= 0.9
                m += 0.1 * grad
                v *= 0.999
                v += 0.001 * grad * grad
                param -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        print(f"embedding epoch {epoch + 1}: loss {total / len(x):.4f}", file=sys.stderr)
    return w1, b1, w2, float(b2[0])


def calibrate(m: classifier.Model, valid: list[Sample]) -> tuple[dict[str, float], str]:
    """Each detector's thresholds on the validation split, scored exactly as at run time (windows and
    chunks): `high` at <= 1% false positives on the real-world benign texts and the generated hard
    negatives about instructions (the embedding detector at EMBED_FP), `medium` at 5%."""
    labels = np.array([s.label for s in valid])
    negatives = np.array([s.label == 0 and s.source != "generated" for s in valid])
    if not negatives.any():
        negatives = labels == 0
    scored = np.array([classifier.raw_max(m, w) for s in valid for w in classifier.windows(s.text)[:1]])
    p, ps, pe = (1 / (1 + np.exp(-scored[:, i])) for i in range(3))
    high, medium = threshold_for(p[negatives], 0.01), threshold_for(p[negatives], 0.05)
    structure_high = threshold_for(ps[negatives], 0.01)
    flagged = (p >= high) | (ps >= structure_high)
    thresholds = {"threshold": high, "threshold_medium": medium, "structure_threshold": structure_high}
    summary = (
        f"validation: n-gram and structural recall {flagged[labels == 1].mean():.3f}, false positives "
        f"{flagged[negatives].mean():.3f} at thresholds {high:.3f} / {structure_high:.3f}"
    )
    if m.embedding is not None:
        embedding_high = threshold_for(pe[negatives], EMBED_FP)
        alone = pe >= embedding_high
        thresholds["embedding_threshold"] = embedding_high
        summary += (
            f"; embedding detector alone: recall {alone[labels == 1].mean():.3f}, false positives "
            f"{alone[negatives].mean():.3f} at threshold {embedding_high:.3f}"
        )
    return thresholds, summary


def save(path: Path, m: classifier.Model) -> None:
    head: dict[str, Any] = {}
    if m.embedding is not None:
        e = m.embedding
        head = {
            "embedding_mean": e.mean.astype(np.float32),
            "embedding_scale": e.scale.astype(np.float32),
            "embedding_w1": e.w1.astype(np.float16),
            "embedding_b1": e.b1.astype(np.float32),
            "embedding_w2": e.w2.astype(np.float32),
            "embedding_b2": np.array(e.b2, dtype=np.float32),
            "embedding_threshold": np.array(e.threshold, dtype=np.float32),
        }
    np.savez_compressed(
        path,
        **head,
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
    parser.add_argument(
        "--embedding-only",
        action="store_true",
        help="keep the shipped n-gram and structural weights, retrain the embedding detector",
    )
    args = parser.parse_args()
    os.environ[classifier.EMBEDDING_ENV] = "1"  # the shipped model read with its embedding detector
    classifier.model.cache_clear()
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
    if not embed.available():
        raise SystemExit("the embedding detector needs the wordllama package (a dependency of owstack)")
    if args.recalibrate:
        m = classifier.model()
    elif args.embedding_only:
        m = dataclasses.replace(classifier.model(), embedding=fit_embedding(train))
    else:
        w, b = fit(train, steps=args.steps)
        sw, sb = fit_structure(train)
        m = classifier.Model(w, b, 0.5, 0.3, "", sw, sb, 0.5, fit_embedding(train))
    thresholds, summary = calibrate(m, valid)
    about = (
        f"logistic regression, {DIM} hashed n-gram and {STRUCT_DIM} structural features, a structural "
        f"detector and an embedding detector ({EMBED_MEMBERS} MLPs of {EMBED_HIDDEN} hidden units, over WordLlama "
        f"l2_supercat_256 pooled word vectors and the structural features); {len(train)} samples "
        f"(seed {SEED}); {summary}; trained {time.strftime('%Y-%m-%d')}"
    )
    assert m.embedding is not None
    if args.embedding_only:  # the n-gram and structural detectors stay exactly as shipped
        thresholds.update(
            threshold=m.threshold, threshold_medium=m.threshold_medium, structure_threshold=m.structure_threshold
        )
        about = (
            f"{m.about.split('; embedding detector:')[0]}; embedding detector: {EMBED_MEMBERS} MLPs of "
            f"{EMBED_HIDDEN} hidden units, over WordLlama l2_supercat_256 pooled word vectors and the structural "
            f"features, {len(train)} samples (seed {SEED}), threshold {thresholds['embedding_threshold']:.3f} at "
            f"<= {EMBED_FP:.1%} false positives on the validation split "
            f"({summary.split('; embedding detector alone: ')[-1]}); trained {time.strftime('%Y-%m-%d')}"
        )
    m = dataclasses.replace(
        m,
        about=about,
        threshold=thresholds["threshold"],
        threshold_medium=thresholds["threshold_medium"],
        structure_threshold=thresholds["structure_threshold"],
        embedding=dataclasses.replace(m.embedding, threshold=thresholds["embedding_threshold"]),
    )
    save(args.out, m)
    print(f"{about}; wrote {args.out} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
