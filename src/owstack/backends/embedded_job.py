"""One generation on the embedded engine: request -> job (event loop), job -> tokens (worker thread).

`build_job` validates and normalises on the event loop (cheap, raises 400s before anything queues);
`run_job` renders the chat template, tokenizes and runs the token loop on the engine's worker thread.
"""

from __future__ import annotations

import codecs
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from owstack.backends import embedded_tools
from owstack.errors import InvalidRequest, UnsupportedContent
from owstack.security.templates import TemplateRenderError, render
from owstack.types import JSON, ChatRequest

if TYPE_CHECKING:
    from owstack.backends.llamacpp import LlamaCppBackend

DEFAULT_TEMPERATURE = 0.7
DEFAULT_THINK_TAGS = ("<think>", "</think>")


@dataclass(slots=True)
class Job:
    request_id: str
    messages: list[JSON]
    max_tokens: int | None
    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float
    frequency_penalty: float
    presence_penalty: float
    seed: int | None
    stop: list[str]
    thinking_budget: int | None = None
    think_tags: tuple[str, str] = DEFAULT_THINK_TAGS
    tools: embedded_tools.ToolPlan | None = None
    #: the LoRA adapter to put on the context (backends/lora.py), None for the plain model
    adapter: str | None = None
    cancelled: bool = False


@dataclass(slots=True)
class JobResult:
    content: str
    reasoning: str | None
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str
    tool_calls: list[JSON] = field(default_factory=list)


def build_job(backend: LlamaCppBackend, request: ChatRequest) -> Job:
    if request.reasoning is not None:
        request = _apply_policy(backend, request)
    params = request.params
    n = params.get("n", 1)
    if n not in (1, None):
        raise InvalidRequest("the embedded engine generates one choice per request (n=1)", param="n")
    messages = [_flatten(i, m, backend) for i, m in enumerate(request.messages)]
    stop = params.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    think_tags = DEFAULT_THINK_TAGS
    reasoning = getattr(backend.card, "reasoning", None)
    if reasoning is not None and getattr(reasoning, "think_tags", None):
        think_tags = (reasoning.think_tags[0], reasoning.think_tags[1])
    tools = embedded_tools.plan(params.get("tools"), params.get("tool_choice"))
    if tools is not None and tools.system_text:
        messages = embedded_tools.with_tool_prompt(messages, tools)
    return Job(
        request_id=uuid.uuid4().hex[:24],
        messages=messages,
        max_tokens=request.max_tokens,
        temperature=_number(params, "temperature", DEFAULT_TEMPERATURE),
        top_p=_number(params, "top_p", 1.0),
        top_k=int(_number(params, "top_k", 0)),
        repeat_penalty=_number(params, "repetition_penalty", 1.0),
        frequency_penalty=_number(params, "frequency_penalty", 0.0),
        presence_penalty=_number(params, "presence_penalty", 0.0),
        seed=params.get("seed") if isinstance(params.get("seed"), int) else None,
        stop=[s for s in stop if isinstance(s, str) and s],
        thinking_budget=params.get("thinking_budget") if isinstance(params.get("thinking_budget"), int) else None,
        think_tags=think_tags,
        tools=tools,
        adapter=backend.lora.requested(request, backend.name),
    )


def _apply_policy(backend: LlamaCppBackend, request: ChatRequest) -> ChatRequest:
    from owstack.efficiency.policies import apply, translate

    translation = translate(request.reasoning, "llamacpp", backend.card)
    shaped = apply(translation, request)
    if translation.thinking_budget is not None:
        shaped.params["thinking_budget"] = translation.thinking_budget
    return shaped


def _number(params: JSON, name: str, default: float) -> float:
    value = params.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _flatten(index: int, message: JSON, backend: LlamaCppBackend) -> JSON:
    """One message with string content, as the GGUF's template expects."""
    content = message.get("content")
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            else:
                raise UnsupportedContent(
                    f"backend {backend.name} ({backend.model}) takes text only; "
                    f"route {kind or 'non-text'} content to a multimodal backend",
                    param=f"messages[{index}].content[{j}]",
                )
        text = "\n".join(texts)
    else:
        text = "" if content is None else str(content)
    calls = message.get("tool_calls")
    if calls:
        text = (text + "\n" if text else "") + embedded_tools.render_calls(calls)
    role = str(message.get("role"))
    if role == "tool":
        role = "tool" if backend.template and "tool" in backend.template else "user"
        text = f"<tool_response>\n{text}\n</tool_response>"
    return {"role": role, "content": text}


def run_job(backend: LlamaCppBackend, job: Job, emit: Callable[[str, str], None] | None) -> JobResult:
    """Worker thread: render, tokenize, generate. `emit(kind, text)` streams pieces as they are decoded."""
    llm = backend.llm
    assert llm is not None and backend.template is not None
    try:
        prompt = render(backend.template, messages=job.messages, add_generation_prompt=True, bos_token="", eos_token="")
    except TemplateRenderError as exc:
        raise InvalidRequest(
            f"cannot render these messages with the model's chat template: {exc}", param="messages"
        ) from None
    backend.lora.activate(llm, job.adapter)
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
    max_new = min(job.max_tokens or backend.max_tokens_default, room)
    if job.seed is not None:
        llm.set_seed(job.seed)
    if job.tools is not None and job.tools.forced:
        emit = None  # a forced tool call is one JSON object: nothing to stream piecemeal
    loop = _TokenLoop(backend, job, emit, max_new)
    try:
        loop.run(tokens)
    finally:
        backend.tokens_generated += loop.count
        if loop.finish == "cancelled":
            backend.generations_cancelled += 1
    return loop.result(len(tokens))


class _TokenLoop:
    """The token loop: sampling, UTF-8 decoding, stop strings, thinking budget, cancellation."""

    def __init__(
        self, backend: LlamaCppBackend, job: Job, emit: Callable[[str, str], None] | None, max_new: int
    ) -> None:
        self.backend = backend
        self.llm = backend.llm
        self.job = job
        self.emit = emit
        self.max_new = max_new
        self.phase = "reasoning" if job.thinking_budget else "content"
        self.text = {"reasoning": [], "content": []}  # type: dict[str, list[str]]
        self.pending = ""  # decoded text held back while it could still become a stop string or a tag
        self.answer_started = False  # leading newlines after the thinking span are dropped
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.count = 0
        self.reasoning_count = 0
        self.finish = "length"
        self.holdback = max(
            [len(s) for s in job.stop] + [len(job.think_tags[1]) if self.phase == "reasoning" else 0] + [0]
        )

    def run(self, tokens: list[int]) -> None:
        """Generate until end of generation, a stop string, max tokens or cancellation.

        Budget forcing restarts generation on `tokens + generated + end-of-thinking marker`: the engine's
        prefix cache keeps everything already evaluated, so only the marker is new work.
        """
        sequence = list(tokens)
        while True:
            forced = self._generate(sequence)
            if not forced:
                break
            sequence += self.llm.tokenize(
                ("\n" + self.job.think_tags[1] + "\n").encode("utf-8"), add_bos=False, special=True
            )
        self._flush()

    def _generate(self, sequence: list[int]) -> bool:
        """One pass of the token loop over `sequence` (extended in place). True when the budget forced an end."""
        llm = self.llm
        job = self.job
        grammar = job.tools.grammar() if job.tools is not None and job.tools.forced else None
        gen = llm.generate(
            sequence,
            temp=job.temperature,
            top_p=job.top_p,
            top_k=job.top_k,
            min_p=0.0,
            repeat_penalty=job.repeat_penalty,
            frequency_penalty=job.frequency_penalty,
            presence_penalty=job.presence_penalty,
            grammar=grammar,
        )
        eog = _eog_check(llm)
        try:
            for token in gen:
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
                if self._feed(self.decoder.decode(llm.detokenize([token]))):
                    self.finish = "stop"
                    return False
                if self.count >= self.max_new:
                    return False
                if self.phase == "reasoning" and self.reasoning_count >= (job.thinking_budget or 0):
                    self._end_reasoning()
                    return True
        finally:
            gen.close()
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

    def _out(self, kind: str, text: str) -> None:
        if kind == "content" and not self.answer_started and self.job.thinking_budget is not None:
            text = text.lstrip("\n")
        if not text:
            return
        if kind == "content":
            self.answer_started = True
        self.text[kind].append(text)
        if self.emit is not None:
            self.emit(kind, text)

    def result(self, prompt_tokens: int) -> JobResult:
        content = "".join(self.text["content"])
        reasoning = "".join(self.text["reasoning"]) if self.job.thinking_budget is not None else None
        finish = self.finish
        calls: list[JSON] = []
        if self.job.tools is not None:
            content, calls = self.job.tools.extract(content)
            if calls:
                finish = "tool_calls"
        return JobResult(
            content=content,
            reasoning=reasoning,
            prompt_tokens=prompt_tokens,
            completion_tokens=self.count,
            reasoning_tokens=self.reasoning_count,
            finish_reason=finish,
            tool_calls=calls,
        )


def _eog_check(llm: Any) -> Callable[[int], bool]:
    try:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
    except (AttributeError, ImportError):
        eos = llm.token_eos()
        return lambda token: token == eos


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
