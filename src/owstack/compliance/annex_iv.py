"""`owstack docs annex-iv`: the technical documentation skeleton in Annex IV's nine sections.

Filled from the config (backends, layers, jurisdictions, tenants, audit settings), the model catalog
(models, versions, licenses, weight digests), evaluation results (a JSON file) and the Prometheus
metrics the gateway exports. Whatever only the provider can write is marked with a line starting
`> TO BE COMPLETED BY THE PROVIDER:`. Templates: `compliance/templates/annex_iv/*.md.j2`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from owstack import __version__
from owstack.compliance.facts import config_hash, model_facts
from owstack.config.load import Config
from owstack.finetune.facts import finetuned

TEMPLATES = Path(__file__).parent / "templates" / "annex_iv"
TODO_MARK = "> TO BE COMPLETED BY THE PROVIDER:"
SECTIONS = (
    "01-general-description",
    "02-elements-and-development",
    "03-monitoring-functioning-control",
    "04-performance-metrics",
    "05-risk-management",
    "06-lifecycle-changes",
    "07-harmonised-standards",
    "08-eu-declaration-of-conformity",
    "09-post-market-monitoring",
)


def prometheus_metrics(config: Config) -> list[dict[str, str]]:
    """The metric families the gateway exports (empty when the metering package is absent)."""
    try:
        from owstack.metering.prometheus import Metrics
    except ImportError:
        return []
    for make in (lambda: Metrics.from_config(config), lambda: Metrics(config.file.backends.keys())):
        try:
            registry = make().registry
            return [{"name": m.name, "type": m.type, "documentation": m.documentation} for m in registry.collect()]
        except Exception:  # the metrics module's own failure must not stop the documentation
            continue
    return []


def flatten_results(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Scalar leaves of an evaluation-results JSON as (dotted key, value), at most 200."""
    out: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            out += flatten_results(v, f"{prefix}{k}.")
    elif isinstance(data, list):
        for i, v in enumerate(data[:50]):
            out += flatten_results(v, f"{prefix}{i}.")
    elif data is not None:
        out.append((prefix.rstrip("."), data))
    return out[:200]


REDTEAM_LATEST = Path("owstack-redteam") / "latest.json"


def redteam_summary(config: Config, path: Path | None = None) -> dict[str, Any] | None:
    """The latest `owstack redteam run` report (its `latest.json`), looked for beside the config file and
    in the working directory unless given: the risk-management section cites its hit rates (Art. 9)."""
    candidates = [path] if path is not None else []
    if config.source and not str(config.source).startswith("<"):
        candidates.append(Path(config.source).parent / REDTEAM_LATEST)
    candidates.append(REDTEAM_LATEST)
    for candidate in candidates:
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and data.get("format") == "owstack-redteam/1":
            return {"path": str(candidate), **data}
    return None


def context(config: Config, results: Path | None = None) -> dict[str, Any]:
    file = config.file
    models = list(model_facts(config).values())
    loaded = None
    if results is not None:
        try:
            loaded = flatten_results(json.loads(results.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--results {results}: {exc}") from None
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "version": __version__,
        "config_source": config.source,
        "config_hash": config_hash(config),
        "models": [asdict(m) for m in models],
        "finetuned": finetuned(config),
        "unpinned": [m.backend for m in models if not m.weights_digest and not m.proprietary],
        "layers": {k: v.model_dump() for k, v in file.layers.items()},
        "tenants": {k: v.model_dump() for k, v in file.tenants.items()},
        "auto": file.routing.auto.model_dump(),
        "max_attempts": file.routing.max_attempts,
        "breaker_threshold": file.routing.breaker.failure_threshold,
        "audit": file.audit.model_dump(),
        "results": loaded,
        "results_source": str(results) if results else None,
        "metrics": prometheus_metrics(config),
        "redteam": redteam_summary(config),
    }


def render(config: Config, results: Path | None = None) -> dict[str, str]:
    """Section file name -> Markdown."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    ctx = context(config, results)
    out = {f"{name}.md": env.get_template(f"{name}.md.j2").render(**ctx).strip() + "\n" for name in SECTIONS}
    todos = sum(text.count(TODO_MARK) for text in out.values())
    index = ["# Technical documentation (EU AI Act, Annex IV)", ""]
    index += [f"- [{name}]({name}.md)" for name in SECTIONS]
    index += ["", f"{todos} places are marked `{TODO_MARK}`: only the provider can write them.", ""]
    out["README.md"] = "\n".join(index)
    return out


def write_annex_iv(config: Config, out_dir: Path, *, results: Path | None = None) -> list[Path]:
    files = render(config, results)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
