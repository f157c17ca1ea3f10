"""LoRA adapters on backends: loaded once per embedded model, chosen per request; named upstream for HTTP engines.

The embedded engine (llama.cpp) loads each registered GGUF LoRA adapter against its model at start
(`llama_adapter_lora_init`) and sets the request's adapter on its one context before the request's prompt
is evaluated (`llama_set_adapters_lora`; none clears them). Switching adapters changes every activation, so
the prompt cache is dropped (`Llama.reset`); requests for the same adapter keep it. Both calls run on the
engine's single worker thread, like the generation itself.

vLLM serves a runtime-loaded adapter under its own name (`model: "<adapter>"`); SGLang takes
`model: "<base model>:<adapter>"` (owstack.finetune.remote loads them there).
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from owstack.errors import ConfigError, ModelNotFound
from owstack.types import ChatRequest

#: how an HTTP engine names a served adapter in the request's `model` field
UPSTREAM_MODEL = {"vllm": "{adapter}", "sglang": "{model}:{adapter}"}


def upstream_model(engine: str, model: str, adapter: str | None) -> str:
    if adapter is None:
        return model
    return UPSTREAM_MODEL.get(engine, "{model}").format(model=model, adapter=adapter)


class LoraSet:
    """The adapters one embedded model serves (name -> GGUF file), and which one its context has on."""

    def __init__(self, files: dict[str, Path] | None = None) -> None:
        self.files = dict(files or {})
        self.loaded: dict[str, Any] = {}
        self.current: str | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self.files)

    def load(self, llm: Any, backend: str) -> None:
        """Load every adapter against the model (worker thread, at start). ConfigError naming a bad file."""
        if not self.files:
            return
        import llama_cpp

        for name, path in self.files.items():
            if not Path(path).is_file():
                raise ConfigError(f"backend {backend}: adapter {name}: no GGUF file at {path}")
            pointer = llama_cpp.llama_adapter_lora_init(llm.model, str(path).encode("utf-8"))
            if not pointer:
                raise ConfigError(f"backend {backend}: llama.cpp cannot load adapter {name} ({path}) for this model")
            self.loaded[name] = pointer  # freed with the model (llama.cpp frees a model's adapters)

    def requested(self, request: ChatRequest, backend: str) -> str | None:
        """The request's adapter, checked against what this backend loaded (event loop, before queueing)."""
        name = getattr(request, "adapter", None)
        if name is not None and name not in self.files:
            raise ModelNotFound(f"backend {backend} does not serve adapter {name!r}", param="model")
        return name

    def activate(self, llm: Any, name: str | None) -> None:
        """Put `name` (None: no adapter) on the context, dropping the prompt cache when it changes."""
        if name == self.current:
            return
        import llama_cpp

        if name is None:
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.loaded[name])
            scales = (ctypes.c_float * 1)(1.0)
            status = llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, 1, scales)
        if status != 0:
            raise RuntimeError(f"llama.cpp refused to set adapter {name}")
        llm.reset()
        self.current = name
