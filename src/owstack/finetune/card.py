"""The model card (`README.md` in the run folder), written from the lineage record.

Hugging Face's model-card layout (YAML front matter, then sections), filled only with facts the run
knows; what only the provider can say (intended use, known limitations) is marked for them to write.
"""

from __future__ import annotations

from typing import Any

import yaml

TODO = "> TO BE COMPLETED BY THE PROVIDER:"


def _sources(record: dict[str, Any]) -> list[str]:
    lines = ["| source | kind | rows | examples | sha256 | may be processed in |", "|---|---|---|---|---|---|"]
    for s in record["data"]["sources"]:
        lines.append(
            f"| {s['name']} | {s['kind']} | {s['rows']} | {s['examples']} | `{s['sha256'][:16]}…` "
            f"| {', '.join(s['jurisdictions'])} |"
        )
    return lines


def _metrics(record: dict[str, Any]) -> list[str]:
    shown = {k: v for k, v in record.get("metrics", {}).items() if isinstance(v, int | float)}
    return [f"- `{k}`: {v:.6g}" for k, v in sorted(shown.items())] or ["- none recorded"]


def model_card(record: dict[str, Any]) -> str:
    base = record["base"]
    front = {
        "base_model": base.get("catalog_id") or base["spec"],
        "library_name": "peft" if record["kind"] == "lora-adapter" else "transformers",
        "tags": ["owstack", record["method"], record["kind"]],
        "owstack": {"lineage": "lineage.json", "recipe_sha256": record["recipe_sha256"]},
    }
    recipe = record["recipe"]
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {record['name']}",
        "",
        f"A {record['kind']} trained with owstack ({record['method'].upper()}, {recipe['tuning']}) on "
        f"{record['data']['train_examples']} examples, from base `{front['base_model']}` "
        f"(sha256 `{base['sha256']}`).",
        "",
        "## Intended use",
        "",
        f"{TODO} the task, the users, and uses that are out of scope.",
        "",
        "## Training data",
        "",
        *_sources(record),
        "",
        f"Held out for evaluation: {record['data']['eval_examples']} examples. PII redaction: "
        f"{record['data']['redaction'] if record['data']['redaction'] is not None else 'off'}.",
        "",
        "## Where it may run",
        "",
        f"Trained in jurisdiction `{record['jurisdiction']['compute']}`. It may be served only from backends in "
        f"{', '.join(f'`{j}`' for j in record['jurisdiction']['serving'])}: the data it learned from allows no other.",
        "",
        "## Training procedure",
        "",
        "```yaml",
        yaml.safe_dump({k: recipe[k] for k in ("lora", "training") if k in recipe}, sort_keys=False).strip(),
        "```",
        "",
        "## Results",
        "",
        *_metrics(record),
        "",
        "Compare with the base model on the held-out split: `owstack eval finetune <run folder>`.",
        "",
        "## Limitations",
        "",
        f"{TODO} known failure modes and risks.",
        "",
        "## Provenance",
        "",
        f"Run by {record['run']['by']} on {record['created']} ({record['run']['processes']} process(es), "
        f"{record['run']['device']}); owstack {record['code']['owstack']}, commit {record['code']['git_commit']}.",
        "",
    ]
    return "\n".join(lines)
