"""On-premises fine-tuning: recipes, data that never leaves, TRL + PEFT training, adapters and lineage.

A run: `recipe` (the strict YAML schema) -> `data` (rows validated with line numbers; local files or the
audit log of a consenting tenant, `audit_data`) -> `sovereignty` (the compute's jurisdiction against the
data's) -> `redact` (optional PII redaction) -> `base` (offline base model, LoRA targets checked) ->
`engine` (TRL's SFTTrainer / DPOTrainer under Accelerate) -> `artifacts` (PEFT adapter, GGUF LoRA adapter
via `lora_gguf`, merged GGUF, model card) and `lineage`. Serving: `registry` (`owstack adapters`),
`remote` (vLLM / SGLang adapter endpoints). Evaluation: `evaluate` (`owstack eval finetune`).

torch, transformers, trl and peft are imported inside functions only: the CLI starts without them.
"""
