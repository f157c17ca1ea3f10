"""Facts about the fine-tuned adapters a config serves, for `owstack bom` and `owstack docs annex-iv`.

Read from the adapter registry (`adapters.registry`) and each adapter's lineage record; no weights are
opened. A damaged lineage file is reported as missing rather than stopping the documentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owstack.finetune import lineage
from owstack.finetune.registry import Registry


def finetuned(config: Any) -> list[dict[str, Any]]:
    """One entry per registered adapter: its digest, base, jurisdictions, backends and lineage summary."""
    out = []
    for adapter in Registry(Path(config.file.adapters.registry)).adapters().values():
        try:
            record = lineage.read(adapter.folder)
        except ValueError:
            record = None
        out.append({**adapter.to_dict(), "lineage": _summary(record) if record else None})
    return out


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    data = record["data"]
    return {
        "method": record["method"],
        "created": record["created"],
        "by": record["run"]["by"],
        "compute_jurisdiction": record["jurisdiction"]["compute"],
        "recipe_sha256": record["recipe_sha256"],
        "owstack": record["code"]["owstack"],
        "git_commit": record["code"]["git_commit"],
        "sources": [
            {k: s[k] for k in ("kind", "name", "sha256", "rows", "examples", "jurisdictions")} for s in data["sources"]
        ],
        "train_examples": data["train_examples"],
        "eval_examples": data["eval_examples"],
        "redaction": data["redaction"],
        "metrics": {k: v for k, v in record["metrics"].items() if k in ("train_loss", "eval_loss", "global_step")},
    }


def bom_properties(entry: dict[str, Any]) -> dict[str, str]:
    """Flat `owstack:*` properties of an adapter's BOM component (CycloneDX properties are strings)."""
    props = {
        "kind": "lora-adapter",
        "base": entry["base"],
        "base_sha256": entry["base_sha256"],
        "backends": ", ".join(entry["backends"]),
        "serving_jurisdictions": ", ".join(entry["jurisdictions"]),
    }
    summary = entry.get("lineage")
    if summary is None:
        return {**props, "lineage": "missing"}
    props.update(
        {
            "method": summary["method"],
            "trained": summary["created"],
            "trained_by": summary["by"],
            "compute_jurisdiction": summary["compute_jurisdiction"],
            "recipe_sha256": summary["recipe_sha256"],
            "code": f"owstack {summary['owstack']} {summary['git_commit'] or ''}".strip(),
        }
    )
    for i, s in enumerate(summary["sources"]):
        props[f"data.{i}"] = f"{s['kind']} {s['name']} sha256:{s['sha256']} rows={s['rows']} examples={s['examples']}"
    for key, value in summary["metrics"].items():
        props[f"metric.{key}"] = f"{value:.6g}" if isinstance(value, float) else str(value)
    return props
