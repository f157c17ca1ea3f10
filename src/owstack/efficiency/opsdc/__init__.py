"""OPSDC: on-policy self-distillation for reasoning compression (arXiv 2603.05433), on PyTorch.

The same model is student (plain problem) and teacher (problem + "be concise" system message). Rollouts
are sampled from the student; the loss is the exact full-vocabulary reverse KL from student to teacher at
every response token, in fp32. Modules: `loss` (the KL), `loading` (offline HF/GGUF loading), `rollout`
(prompts, sampling, aligned logits), `checkpoint` (save/resume), `trainer` (the loop), `gguf_export`.

torch and transformers are imported inside these modules' functions' callers only: import this package
from a command, never at CLI start-up.
"""
