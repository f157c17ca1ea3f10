"""GGUF files: metadata read with the `gguf` library; every chat template checked for template-injection
constructs and rendered with a sample conversation in the immutable sandbox (never outside it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owstack.security.templates import TemplateRenderError, TemplateSandboxViolation, find_ssti, render

SAMPLE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "Thanks."},
]


@dataclass
class TemplateResult:
    name: str
    constructs: list[str] = field(default_factory=list)
    violation: str | None = None
    error: str | None = None
    severity: str = "critical"


@dataclass
class GGUFInfo:
    architecture: str | None = None
    model_name: str | None = None
    tensors: int = 0
    templates: list[TemplateResult] = field(default_factory=list)


def _string(reader: Any, key: str) -> str | None:
    f = reader.fields.get(key)
    if f is None or not f.data:
        return None
    try:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    except (UnicodeDecodeError, IndexError, TypeError, ValueError):
        return None


def _token(reader: Any, key: str) -> str:
    """bos/eos token text from the vocabulary, for a realistic render (empty if unknown)."""
    f, tokens = reader.fields.get(key), reader.fields.get("tokenizer.ggml.tokens")
    try:
        index = int(f.parts[f.data[0]][0])
        return bytes(tokens.parts[tokens.data[index]]).decode("utf-8")
    except (AttributeError, IndexError, TypeError, ValueError, UnicodeDecodeError):
        return ""


def templates(reader: Any) -> dict[str, str]:
    """Every chat template in the file: the default one and the named ones (`tokenizer.chat_template.NAME`)."""
    out: dict[str, str] = {}
    for key in reader.fields:
        if key == "tokenizer.chat_template" or key.startswith("tokenizer.chat_template."):
            text = _string(reader, key)
            if text is not None:
                out[key.removeprefix("tokenizer.chat_template").lstrip(".") or "default"] = text
    return out


def check_template(name: str, source: str, bos: str = "", eos: str = "") -> TemplateResult:
    result = TemplateResult(name)
    try:
        issues = find_ssti(source)
    except TemplateRenderError as exc:
        result.error = str(exc)
        return result
    result.constructs = [i.construct for i in issues]
    ranks = {"medium": 0, "high": 1, "critical": 2}
    result.severity = max((i.severity for i in issues), key=ranks.__getitem__, default="critical")
    try:
        render(source, messages=SAMPLE, add_generation_prompt=True, bos_token=bos, eos_token=eos)
    except TemplateSandboxViolation as exc:
        result.violation = str(exc)
    except TemplateRenderError as exc:
        result.error = str(exc)
    return result


def inspect(path: Path) -> GGUFInfo:
    """Read a GGUF file's metadata and check its templates. Raises on a malformed file."""
    from gguf import GGUFReader

    reader = GGUFReader(path, "r")
    info = GGUFInfo(_string(reader, "general.architecture"), _string(reader, "general.name"), len(reader.tensors))
    bos, eos = _token(reader, "tokenizer.ggml.bos_token_id"), _token(reader, "tokenizer.ggml.eos_token_id")
    for name, source in templates(reader).items():
        info.templates.append(check_template(name, source, bos, eos))
    return info
