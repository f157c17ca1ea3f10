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


@cache
def model() -> Model:
    with resources.files("owstack.security").joinpath("data", "guard_model.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        weights = data["weights"].astype(np.float32)
        if weights.shape != (DIM + STRUCT_DIM,):
            raise ValueError(f"guard_model.npz has {weights.shape} weights, expected ({DIM + STRUCT_DIM},)")
        return Model(
            weights,
            float(data["bias"]),
            float(data["threshold"]),
            float(data["threshold_medium"]),
            str(data["about"]),
            data["structure_weights"].astype(np.float32),
            float(data["structure_bias"]),
            float(data["structure_threshold"]),
        )


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


def raw(m: Model, text: str) -> tuple[float, float]:
    """(n-gram model's logit, structural detector's logit) of one piece of text."""
    idx, struct = featurize(text)
    if len(idx) == 0:
        return -40.0, -40.0
    z = m.bias + float(m.weights[idx].sum()) / math.sqrt(len(idx)) + float(m.weights[DIM + struct].sum())
    return z, m.structure_bias + float(m.structure_weights[struct].sum())


def raw_max(m: Model, text: str) -> tuple[float, float]:
    """The largest logits of each detector over the window and its chunks."""
    scores = [raw(m, piece) for piece in [text, *chunks(text)]]
    return max(z for z, _ in scores), max(zs for _, zs in scores)


def _score(m: Model, text: str) -> float:
    """A window's probability: the larger of the n-gram model's and the structural detector's, over the
    window and its chunks, the structural one shifted so that its own threshold lands on the model's
    (either one reaching its threshold flags)."""
    z, zs = raw_max(m, text)
    shifted = zs - _logit(m.structure_threshold) + _logit(m.threshold)
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
