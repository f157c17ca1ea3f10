"""`llamacpp`: the embedded engine. A GGUF model in-process through llama-cpp-python.

One model instance is not thread-safe, so every generation runs on one dedicated worker thread: concurrent
requests queue for it (up to `max_queue`, then 503) instead of corrupting each other's KV cache. The event
loop never blocks; tokens travel from the worker to the request's stream one by one. A request whose client
went away sets its job's `cancelled` flag and the worker stops at the next token.

The chat template comes from the GGUF file and is rendered in jinja2's immutable sandbox
(`owstack.security.templates`). Generation is a token loop over `Llama.generate`, so owstack counts tokens
exactly and can force the end-of-thinking marker after a budget (`thinking_budget`, budget forcing).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from owstack.backends.embedded_job import Job, build_job
from owstack.backends.embedded_loop import JobResult, run_job
from owstack.backends.lora import LoraSet
from owstack.config.schema import BackendSection
from owstack.errors import ConfigError, NoHealthyBackend, OwstackError, ServiceUnavailable, UpstreamError
from owstack.types import JSON, ChatRequest, Completion, Usage

_END = object()
_ids = itertools.count(1)
log = logging.getLogger("owstack.engine")


class LlamaCppBackend:
    engine = "llamacpp"
    proprietary = False

    def __init__(
        self,
        name: str,
        *,
        model: str,
        path: Path,
        sha256: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        max_queue: int = 64,
        max_tokens_default: int = 512,
        jurisdiction: str = "local",
        card: Any = None,
        adapters: dict[str, Path] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.path = path
        self.sha256 = sha256
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(os.cpu_count() or 1, 8))
        self.max_queue = max_queue
        self.max_tokens_default = max_tokens_default
        self.jurisdiction = jurisdiction
        self.card = card
        #: GGUF LoRA adapters this model serves, chosen per request (backends/lora.py)
        self.lora = LoraSet(adapters)
        self.llm: Any = None
        self.template: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending = 0
        self._load_lock = asyncio.Lock()
        #: counters for /metrics (written by the worker thread only)
        self.tokens_generated = 0
        self.generations_cancelled = 0

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_section(
        cls, name: str, section: BackendSection, adapters: dict[str, Path] | None = None
    ) -> LlamaCppBackend:
        card = _find_card(section.catalog or section.model)
        if section.model_path:
            path = Path(section.model_path).expanduser()
            sha = section.sha256
        else:
            if card is None or getattr(card, "gguf", None) is None:
                raise ConfigError(
                    f"backends.{name}.model: {section.model!r} is not a catalog model with a bundled GGUF file; "
                    "set `model_path` to a .gguf file"
                )
            from owstack.catalog.models import embedded_gguf_path

            path = embedded_gguf_path(card)
            sha = section.sha256 or card.gguf.sha256
        return cls(
            name,
            model=section.model,
            path=path,
            sha256=sha,
            n_ctx=section.n_ctx,
            n_threads=section.n_threads,
            max_queue=section.max_queue,
            max_tokens_default=section.max_tokens_default,
            jurisdiction=section.jurisdiction,
            card=card,
            adapters=adapters,
        )

    @classmethod
    def from_catalog(cls, model: str, name: str | None = None, **kwargs: Any) -> LlamaCppBackend:
        section = BackendSection(engine="llamacpp", model=model, **kwargs)
        return cls.from_section(name or model, section)

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], name: str = "embedded", **kwargs: Any) -> LlamaCppBackend:
        model = kwargs.pop("model", Path(path).stem)
        section = BackendSection(engine="llamacpp", model=model, model_path=str(path), **kwargs)
        return cls.from_section(name, section)

    def verify(self) -> None:
        """Check the file exists and matches its pinned SHA-256 (raises ConfigError naming both digests)."""
        if not self.path.is_file():
            raise ConfigError(f"backend {self.name}: model file {self.path} does not exist")
        if self.sha256:
            from owstack.catalog.models import verify_sha256

            verify_sha256(self.path, self.sha256)

    # lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._load_lock:
            if self.llm is not None:
                return
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llamacpp-{self.name}")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        self.verify()
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False, seed=-1)
        self.template = self.llm.metadata.get("tokenizer.chat_template")
        if not self.template:
            raise ConfigError(f"backend {self.name}: {self.path} carries no chat template")
        self.lora.load(self.llm, self.name)

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self.llm is not None:
            self.llm.close()
            self.llm = None

    @property
    def loaded(self) -> bool:
        return self.llm is not None

    @property
    def queue_depth(self) -> int:
        """Requests waiting for or running on the model."""
        return self._pending

    # requests -----------------------------------------------------------------------------------
    def _admit(self, request: ChatRequest) -> Job:
        if self.llm is None or self._executor is None:
            raise ServiceUnavailable(f"backend {self.name} is still loading its model", code="model_loading")
        if self._pending >= self.max_queue:
            raise NoHealthyBackend(
                f"backend {self.name} has {self._pending} requests queued (max_queue)", code="queue_full"
            )
        try:
            return build_job(self, request)
        except OwstackError:
            raise
        except Exception as exc:
            log.exception("backend %s could not prepare a request", self.name)
            raise UpstreamError(
                f"backend {self.name} could not prepare this request ({type(exc).__name__})", code="engine_error"
            ) from None

    async def _submit(self, job: Job, emit: Callable[[tuple[Any, ...]], None] | None) -> asyncio.Future[JobResult]:
        assert self._executor is not None
        self._pending += 1
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, run_job, self, job, emit)

        def _done(_: object) -> None:
            self._pending -= 1

        fut.add_done_callback(_done)
        return fut

    async def complete(self, request: ChatRequest) -> Completion:
        job = self._admit(request)
        fut = await self._submit(job, None)
        try:
            result = await asyncio.shield(fut)
        except asyncio.CancelledError:
            job.cancelled = True
            raise
        message: JSON = {"role": "assistant", "content": result.content}
        if result.reasoning is not None:
            message["reasoning_content"] = result.reasoning
        if result.tool_calls:
            message["tool_calls"] = result.tool_calls
            message["content"] = result.content or None
        usage = _usage(result)
        choice: JSON = {
            "index": 0,
            "message": message,
            "logprobs": None if result.logprobs is None else {"content": result.logprobs, "refusal": None},
            "finish_reason": result.finish_reason,
            "stop_reason": result.stop_reason,
        }
        body = {
            "id": f"chatcmpl-{job.request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": usage.to_openai(),
        }
        return Completion(body=body, usage=usage, finish_reason=result.finish_reason)

    async def stream(self, request: ChatRequest) -> AsyncIterator[JSON]:
        job = self._admit(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(event: tuple[Any, ...]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        fut = await self._submit(job, emit)
        fut.add_done_callback(lambda _: queue.put_nowait(_END))
        base = {
            "id": f"chatcmpl-{job.request_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }
        with_logprobs = job.logprobs is not None

        def chunk(delta: JSON, **extra: Any) -> JSON:
            choice: JSON = {"index": 0, "delta": delta, **extra}
            choice.setdefault("finish_reason", None)
            return {**base, "choices": [choice]}

        try:
            started = False
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if not started:
                    started = True
                    yield chunk({"role": "assistant", "content": ""})
                yield _event_chunk(item, chunk, with_logprobs)
            result = fut.result()  # raises what the worker raised (before the first chunk: retryable elsewhere)
            if not started:
                yield chunk({"role": "assistant", "content": ""})
            yield chunk({}, finish_reason=result.finish_reason, stop_reason=result.stop_reason)
            yield {**base, "choices": [], "usage": _usage(result).to_openai()}
        finally:
            job.cancelled = True

    async def list_models(self) -> list[str]:
        return [self.model]

    async def health(self, timeout: float = 2.0) -> bool:
        return self.llm is not None

    def tokenize(self, text: str) -> int:
        """Number of tokens in `text` under this model's vocabulary (thread-safe: tokenizing reads the vocab)."""
        if self.llm is None:
            raise ServiceUnavailable(f"backend {self.name} is not loaded")
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def _event_chunk(item: tuple[Any, ...], chunk: Callable[..., JSON], with_logprobs: bool) -> JSON:
    """One worker event (see `embedded_loop`) as a `chat.completion.chunk`."""
    kind = item[0]
    if kind == "reasoning":
        return chunk({"reasoning_content": item[1]})
    if kind == "content":
        if not with_logprobs:
            return chunk({"content": item[1]})
        return chunk({"content": item[1]}, logprobs={"content": item[2] or []})
    if kind == "call":
        _, index, call_id, name = item
        call = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        return chunk({"tool_calls": [call]})
    if kind == "args":
        return chunk({"tool_calls": [{"index": item[1], "function": {"arguments": item[2]}}]})
    return chunk({"content": ""}, logprobs={"content": item[1]})


def _usage(result: JobResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        reasoning_tokens=result.reasoning_tokens,
        reported=True,
    )


def _find_card(model: str) -> Any:
    try:
        from owstack.catalog.models import find_card
    except ImportError:
        return None
    return find_card(model)


def next_job_id() -> str:
    return f"{os.getpid():x}{next(_ids):08x}"
