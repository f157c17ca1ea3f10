"""Render chat templates (Jinja code shipped inside model files) only in jinja2's immutable sandbox.

Chat templates are code: CVE-2024-34359 (llama-cpp-python) and CVE-2026-5760 (SGLang) were server-side
template injection through them. Every template owstack renders goes through `render`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Template
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRenderError(ValueError):
    """A template that does not compile or fails while rendering (sandbox violations included)."""


def _raise_exception(message: str) -> None:
    raise TemplateRenderError(message)


@lru_cache(maxsize=32)
def _compile(source: str) -> Template:
    # The same environment options as Hugging Face's `apply_chat_template`, so templates render alike.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = _raise_exception
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise TemplateRenderError(f"chat template does not compile: {exc}") from None


def render(source: str, **context: Any) -> str:
    """Render `source` with `context` in the immutable sandbox; raise `TemplateRenderError` on failure."""
    template = _compile(source)
    try:
        return template.render(**context)
    except TemplateError as exc:
        raise TemplateRenderError(f"chat template failed: {exc}") from None
