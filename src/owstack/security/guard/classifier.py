"""The guard's second stage: a trained classifier for injected instructions, offline, numpy only.

The rules (`detect`) are fast and explainable but only know their phrases; the classifier is a logistic
regression over hashed character and word n-grams of normalised text (`features`): it generalises to
paraphrases, other languages and obfuscations whose n-grams resemble what it was trained on. The model
is a package data file (`security/data/guard_model.npz`: weights, bias, thresholds and how it was
trained), trained by `python -m owstack.security.guard.training.train` on the corpus described there
and in docs/security.md; nothing is downloaded at run time.

Long texts are read in overlapping windows and scored by their most suspicious window, so an injection
in the middle of a long tool result is not diluted by the text around it. Beyond `MAX_WINDOWS` windows,
evenly spaced ones are read (the rules still see the whole text).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from owstack.security.guard.features import DIM, buckets

WINDOW = 1200
STEP = 900
MAX_WINDOWS = 16


@dataclass(frozen=True)
class Model:
    weights: np.ndarray
    bias: float
    #: probability at or above which a text is reported as `high` (tuned for <= 1% false positives on
    #: the training distribution's validation split) and as `medium`
    threshold: float
    threshold_medium: float
    about: str


@cache
def model() -> Model:
    with resources.files("owstack.security").joinpath("data", "guard_model.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        weights = data["weights"].astype(np.float32)
        if weights.shape != (DIM,):
            raise ValueError(f"guard_model.npz has {weights.shape} weights, expected ({DIM},)")
        return Model(
            weights,
            float(data["bias"]),
            float(data["threshold"]),
            float(data["threshold_medium"]),
            str(data["about"]),
        )


def _score(m: Model, text: str) -> float:
    idx = buckets(text)
    if len(idx) == 0:
        return 0.0
    z = m.bias + float(m.weights[idx].sum()) / math.sqrt(len(idx))
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


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
