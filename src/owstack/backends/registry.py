"""Backend construction: one config entry -> one object implementing `Backend`."""

from __future__ import annotations

from pathlib import Path

from owstack.backends.base import Backend
from owstack.config.load import Config
from owstack.config.schema import HTTP_ENGINES, BackendSection


def build_backend(name: str, section: BackendSection, config: Config) -> Backend:
    if section.engine == "llamacpp":
        from owstack.backends.llamacpp import LlamaCppBackend
        from owstack.finetune.registry import for_backend

        adapters = for_backend(Path(config.file.adapters.registry), name)
        return LlamaCppBackend.from_section(name, section, adapters=adapters)
    if section.engine in HTTP_ENGINES:
        from owstack.backends.openai_http import OpenAIHTTPBackend

        api_key = config.secret(section.api_key, field=f"backends.{name}.api_key")
        return OpenAIHTTPBackend(name, section, api_key=api_key)
    raise AssertionError(f"unknown engine {section.engine}")  # the schema allows no other
