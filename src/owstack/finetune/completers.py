"""Where `owstack eval finetune` sends prompts: the embedded engine with the run's GGUF adapter, or a URL.

Embedded: one llama.cpp model (the run's base GGUF) with the adapter loaded; a request without adapter is
the base model, with it the tuned one: the same code path the gateway serves with. URL: any
OpenAI-compatible server (the owstack gateway, vLLM, SGLang) with a base and a tuned model name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from owstack.efficiency.clients import EvalError, HTTPCompleter, Reply, reply_from_body
from owstack.types import ChatRequest


class EmbeddedAdapters:
    def __init__(self, gguf: Path, adapters: dict[str, Path], *, n_threads: int | None = None) -> None:
        self.gguf, self.adapters, self.n_threads = gguf, adapters, n_threads
        self._backend: Any = None

    async def start(self) -> None:
        from owstack.backends.llamacpp import LlamaCppBackend
        from owstack.errors import ConfigError

        self._backend = LlamaCppBackend(
            "eval",
            model=self.gguf.stem,
            path=self.gguf,
            n_ctx=2048,
            n_threads=self.n_threads,
            adapters=self.adapters,
        )
        try:
            await self._backend.start()
        except ConfigError as exc:
            raise EvalError(str(exc)) from None

    async def __call__(self, messages: list[dict[str, Any]], adapter: str | None, max_tokens: int) -> Reply:
        request = ChatRequest(
            model=self._backend.model,
            messages=messages,
            params={"max_tokens": max_tokens, "temperature": 0.0, "seed": 0},
            adapter=adapter,
        )
        completion = await self._backend.complete(request)
        return reply_from_body(completion.body, completion.usage)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


class URLModels:
    """A base and a tuned model name on one OpenAI-compatible URL."""

    def __init__(self, url: str, base_model: str, tuned_model: str, api_key: str | None = None) -> None:
        self.base = HTTPCompleter(url, base_model, engine="openai", api_key=api_key)
        self.tuned = HTTPCompleter(url, tuned_model, engine="openai", api_key=api_key)

    async def start(self) -> None:
        return None

    async def __call__(self, messages: list[dict[str, Any]], adapter: str | None, max_tokens: int) -> Reply:
        client = self.base if adapter is None else self.tuned
        return await client.complete(messages, {"max_tokens": max_tokens, "temperature": 0.0, "seed": 0}, None)

    async def aclose(self) -> None:
        await self.base.aclose()
        await self.tuned.aclose()
