"""What a job's build (embedded_job.py) and its token loop (embedded_loop.py) read of the engine serving it.

`LlamaCppBackend` (llamacpp.py) builds and runs jobs through those two modules, so they name the engine by
this protocol instead of importing it back; mypy checks at each call that the engine still fits.
"""

from __future__ import annotations

from typing import Any, Protocol

from owstack.backends.lora import LoraSet


class EmbeddedModel(Protocol):
    name: str
    model: str
    #: the catalog card (reasoning format, tool-call format), None for a model outside the catalog
    card: Any
    #: GGUF LoRA adapters, chosen per request
    lora: LoraSet
    #: the loaded `llama_cpp.Llama`, None until loaded
    llm: Any
    #: the GGUF file's chat template, None until loaded
    template: str | None
    n_ctx: int
    max_tokens_default: int
    #: counters for /metrics, written by the worker thread only
    tokens_generated: int
    generations_cancelled: int
