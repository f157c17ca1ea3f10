"""Chat templates shipped beside weights: `tokenizer_config.json` and `processor_config.json`
(`chat_template` as a string or a list of named templates), `chat_template.json`, `chat_template.jinja`
and any other `.jinja` file (transformers loads `additional_chat_templates/NAME.jinja` as named
templates). Each one is checked like a GGUF's (`gguf_check.check_template`: AST analysis, then one
render in the sandbox), since transformers, vLLM and SGLang render them exactly as llama.cpp renders
the GGUF's."""

from __future__ import annotations

import json
from pathlib import Path

from owstack.security.findings import ModelFinding, model_finding
from owstack.security.model_scan.gguf_check import TemplateResult, check_template

NAMES = frozenset({"tokenizer_config.json", "processor_config.json", "chat_template.json", "chat_template.jinja"})


def is_template(name: str) -> bool:
    lower = name.lower()
    return lower in NAMES or lower.endswith(".jinja")


MAX_BYTES = 16 * 1024 * 1024


def check_file(path: Path) -> list[TemplateResult]:
    """Every template in one of the NAMES files; raises ValueError/OSError on an unreadable file."""
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    if path.name.lower().endswith(".jinja"):
        return [check_template("default", text)]
    data = json.loads(text)
    template = data.get("chat_template") if isinstance(data, dict) else None
    bos = _token(data, "bos_token")
    eos = _token(data, "eos_token")
    if isinstance(template, str):
        return [check_template("default", template, bos, eos)]
    out: list[TemplateResult] = []
    if isinstance(template, dict):  # {name: template}: what transformers keeps after loading a named list
        for name, text in template.items():
            if isinstance(text, str):
                out.append(check_template(str(name), text, bos, eos))
        return out
    for i, entry in enumerate(template if isinstance(template, list) else []):
        if isinstance(entry, dict) and isinstance(entry.get("template"), str):
            out.append(check_template(str(entry.get("name") or i), entry["template"], bos, eos))
    return out


def _token(data: object, key: str) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def findings(rel: str, digest: str, fmt: str, results: list[TemplateResult]) -> list[ModelFinding]:
    out: list[ModelFinding] = []
    for t in results:
        where = f"chat template {t.name!r}"
        if t.constructs or t.violation:
            what = ", ".join(t.constructs[:8]) or str(t.violation)
            detail = f"; the sandbox stopped it: {t.violation}" if t.violation else ""
            severity = "critical" if t.violation else t.severity
            out.append(
                model_finding(
                    "OWS-MDL-010",
                    rel,
                    f"{where} uses {what}{detail}",
                    sha256=digest,
                    fmt=fmt,
                    executes=what,
                    severity=severity,  # type: ignore[arg-type]
                )
            )
        elif t.error:
            out.append(model_finding("OWS-MDL-011", rel, f"{where}: {t.error}"[:300], sha256=digest, fmt=fmt))
    return out
