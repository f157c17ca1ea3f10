"""The embedded engine's worker-thread side: render, tokenize, run the token loop, report events.

Events go to `emit` as they happen (a stream turns each into a chunk):

    ("reasoning", text)                    thinking text
    ("content", text, logprobs | None)     answer text, with the logprob entries of the tokens it came from
    ("call", index, id, name)              a tool call begins
    ("args", index, text)                  a piece of its JSON arguments
    ("logprobs", entries)                  entries of tokens that produced no text of their own

`run_job` never lets an exception escape untyped: anything unexpected is logged, the engine's cache is
reset, and the caller gets an `UpstreamError` while the worker goes on serving the next job.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from owstack.backends.embedded_job import Job
from owstack.backends.embedded_model import EmbeddedModel
from owstack.backends.embedded_sampler import Logprobs, Sampler, decode
from owstack.errors import InvalidRequest, OwstackError, UpstreamError
from owstack.security.templates import TemplateRenderError, render
from owstack.types import JSON

log = logging.getLogger("owstack.engine")
Emit = Callable[[tuple[Any, ...]], None]


@dataclass(slots=True)
class JobResult:
    content: str
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str
    tool_calls: list[JSON] = field(default_factory=list)
    #: the stop string that ended generation (vLLM's `stop_reason`), else None
    stop_reason: str | None = None
    logprobs: list[JSON] | None = None


def run_job(backend: EmbeddedModel, job: Job, emit: Emit | None) -> JobResult:
    """Worker thread. Raises only `OwstackError`s; the engine stays usable whatever happened."""
    try:
        return _run(backend, job, emit)
    except OwstackError:
        _recover(backend)
        raise
    except Exception as exc:
        log.exception("embedded job %s failed on backend %s", job.request_id, backend.name)
        _recover(backend)
        raise UpstreamError(
            f"backend {backend.name} failed on this request ({type(exc).__name__}); it goes on serving others",
            code="engine_error",
        ) from None


def _recover(backend: EmbeddedModel) -> None:
    """Forget the KV cache: whatever the failed job left there must not reach the next one."""
    llm = backend.llm
    with contextlib.suppress(Exception):
        llm.reset()
        llm._ctx.kv_cache_clear()


def _run(backend: EmbeddedModel, job: Job, emit: Emit | None) -> JobResult:
    llm = backend.llm
    assert llm is not None and backend.template is not None
    try:
        prompt = render(backend.template, messages=job.messages, add_generation_prompt=True, bos_token="", eos_token="")
    except TemplateRenderError as exc:
        raise InvalidRequest(
            f"cannot render these messages with the model's chat template: {exc}", param="messages"
        ) from None
    backend.lora.activate(llm, job.adapter)  # the request's LoRA adapter, or none (backends/lora.py)
    if job.thinking_budget:
        prompt += job.think_tags[0] + "\n"
    elif job.thinking_budget == 0:
        # NoThinking prefill: an empty thinking span, so the model goes straight to the answer
        prompt += job.think_tags[0] + "\n\n" + job.think_tags[1] + "\n"
    tokens = llm.tokenize(
        prompt.encode("utf-8"),
        add_bos=bool(llm.metadata.get("tokenizer.ggml.add_bos_token") == "true"),
        special=True,
    )
    room = backend.n_ctx - len(tokens)
    if room <= 0:
        raise InvalidRequest(
            f"the prompt is {len(tokens)} tokens; {backend.model} is served with a {backend.n_ctx}-token context",
            param="messages",
            code="context_length_exceeded",
        )
    loop = _TokenLoop(backend, job, emit, min(job.max_tokens or backend.max_tokens_default, room))
    try:
        loop.run(tokens)
    finally:
        backend.tokens_generated += loop.count
        if loop.finish == "cancelled":
            backend.generations_cancelled += 1
    return loop.result(len(tokens))


class _TokenLoop:
    """Sampling, UTF-8 decoding, stop strings, thinking budget, tool-call reading, cancellation."""

    def __init__(self, backend: EmbeddedModel, job: Job, emit: Emit | None, max_new: int) -> None:
        self.backend = backend
        self.llm = backend.llm
        self.job = job
        self.emit = emit
        self.max_new = max_new
        self.phase = "reasoning" if job.thinking_budget else "content"
        self.text: dict[str, list[str]] = {"reasoning": [], "content": []}
        self.pending = ""  # decoded text held back while it could still become a stop string or a tag
        self.answer_started = False  # leading newlines after the thinking span are dropped
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.count = 0
        self.reasoning_count = 0
        self.finish = "length"
        self.stop_reason: str | None = None
        self.reader = job.tools.reader() if job.tools is not None else None
        self.logprobs: Logprobs | None = None
        self.entries: list[JSON] = []  # every content token's logprob entry
        self.unsent: list[JSON] = []  # entries not yet attached to an event
        self.holdback = max(
            [len(s) for s in job.stop] + [len(job.think_tags[1]) if self.phase == "reasoning" else 0] + [0]
        )

    def run(self, tokens: list[int]) -> None:
        """Generate until end of generation, a stop string, max tokens or cancellation.

        Budget forcing restarts decoding on `tokens + generated + end-of-thinking marker`: the prefix cache
        keeps everything already evaluated, so only the marker is new work.
        """
        job = self.job
        with contextlib.ExitStack() as stack:
            free = stack.enter_context(Sampler(self.llm, job.settings, job.seed))
            bound = stack.enter_context(Sampler(self.llm, job.settings, job.seed, job.grammar)) if job.grammar else free
            if job.logprobs is not None:
                self.logprobs = Logprobs(self.llm, free, job.logprobs)
            sequence = list(tokens)
            fresh = job.fresh
            while self._generate(sequence, free, bound, fresh):
                fresh = False
                marker = "\n" + job.think_tags[1] + "\n"
                sequence += self.llm.tokenize(marker.encode("utf-8"), add_bos=False, special=True)
        self._flush()

    def _generate(self, sequence: list[int], free: Sampler, bound: Sampler, fresh: bool) -> bool:
        """One decoding pass over `sequence` (extended in place). True when the budget forced an end."""
        job = self.job
        eog = _eog_check(self.llm)

        def pick() -> int:
            if self.phase == "reasoning":
                return free.sample()
            if self.logprobs is not None:
                self.logprobs.capture()
            return bound.sample()

        tokens = decode(self.llm, sequence, pick, fresh=fresh)
        try:
            for token in tokens:
                if job.cancelled:
                    self.finish = "cancelled"
                    return False
                if eog(token):
                    self.finish = "stop"
                    return False
                sequence.append(token)
                self.count += 1
                if self.phase == "reasoning":
                    self.reasoning_count += 1
                elif self.logprobs is not None:
                    entry = self.logprobs.entry(token)
                    self.entries.append(entry)
                    self.unsent.append(entry)
                if self._feed(self.decoder.decode(self.llm.detokenize([token]))):
                    self.finish = "stop"
                    return False
                if self.count >= self.max_new:
                    return False
                if self.phase == "reasoning" and self.reasoning_count >= (job.thinking_budget or 0):
                    self._end_reasoning()
                    return True
        finally:
            tokens.close()
        return False

    def _feed(self, piece: str) -> bool:
        """Add decoded text; emit what can no longer be part of a stop string. True when a stop string hit."""
        self.pending += piece
        if self.phase == "reasoning":
            close = self.job.think_tags[1]
            at = self.pending.find(close)
            if at >= 0:
                before, after = self.pending[:at], self.pending[at + len(close) :]
                self._out("reasoning", before)
                self.pending = after.lstrip("\n")
                self.phase = "content"
        if self.phase == "content":
            for stop in self.job.stop:
                at = self.pending.find(stop)
                if at >= 0:
                    self._out("content", self.pending[:at])
                    self.pending = ""
                    self.stop_reason = stop
                    return True
        keep = self.holdback
        if len(self.pending) > keep:
            cut = len(self.pending) - keep
            self._out(self.phase, self.pending[:cut])
            self.pending = self.pending[cut:]
        return False

    def _end_reasoning(self) -> None:
        self._out("reasoning", self.pending)
        self.pending = ""
        self.phase = "content"

    def _flush(self) -> None:
        self.pending += self.decoder.decode(b"", final=True)
        self._out(self.phase, self.pending)
        self.pending = ""
        if self.reader is not None:
            self._deliver(self.reader.finish())
        if self.unsent and self.emit is not None:
            self.emit(("logprobs", self.unsent))
        self.unsent = []

    def _out(self, kind: str, text: str) -> None:
        if kind == "content" and not self.answer_started and self.job.thinking_budget is not None:
            text = text.lstrip("\n")
        if not text:
            return
        if kind == "reasoning":
            self.text["reasoning"].append(text)
            if self.emit is not None:
                self.emit(("reasoning", text))
            return
        self.answer_started = True
        self._deliver(self.reader.feed(text) if self.reader is not None else [("content", text)])

    def _deliver(self, deltas: list[tuple[Any, ...]]) -> None:
        for delta in deltas:
            if delta[0] == "content":
                self.text["content"].append(delta[1])
                entries, self.unsent = (self.unsent or None), []
                event: tuple[Any, ...] = ("content", delta[1], entries)
            else:
                event = delta
            if self.emit is not None:
                self.emit(event)

    def result(self, prompt_tokens: int) -> JobResult:
        content = "".join(self.text["content"])
        reasoning = "".join(self.text["reasoning"]) if self.job.thinking_budget is not None else None
        finish = self.finish
        calls = self.reader.tool_calls() if self.reader is not None else []
        tools = self.job.tools
        if tools is not None and tools.forced and not calls and finish != "cancelled":
            raise InvalidRequest(
                f"max_tokens ({self.max_new}) ended the forced tool call before its function name was complete",
                param="max_tokens",
            )
        if calls:
            finish = "length" if self.reader is not None and self.reader.truncated else "tool_calls"
            content = content.strip()
        return JobResult(
            content=content,
            reasoning=reasoning,
            prompt_tokens=prompt_tokens,
            completion_tokens=self.count,
            reasoning_tokens=self.reasoning_count,
            finish_reason=finish,
            tool_calls=calls,
            stop_reason=self.stop_reason if finish == "stop" else None,
            logprobs=self.entries if self.logprobs is not None else None,
        )


def _eog_check(llm: Any) -> Callable[[int], bool]:
    try:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
    except (AttributeError, ImportError):
        eos = llm.token_eos()
        return lambda token: token == eos
