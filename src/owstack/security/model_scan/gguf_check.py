"""GGUF files: the header read with every length checked (`gguf_header`); every chat template checked for
template-injection constructs and rendered with a sample conversation in the immutable sandbox (never
outside it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from owstack.security.model_scan import gguf_header
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
    tensor_problems: list[str] = field(default_factory=list)


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
    """Read a GGUF file's header (`gguf_header`, bounds-checked) and check every template in it: the
    default one, the named ones and the names list, whatever their value type (llama-cpp-python renders
    an array as its text, so each string element is checked). Raises `GGUFMalformed` on a bad header."""
    header = gguf_header.read(path)
    info = GGUFInfo(header.strings.get("general.architecture"), header.strings.get("general.name"), header.tensors)
    info.tensor_problems = header.tensor_problems
    for name, source in header.template_values.items():
        info.templates.append(check_template(name, source, header.bos, header.eos))
    return info
