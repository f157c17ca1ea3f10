"""One generation on the embedded engine, as a job: built from the request on the event loop.

`build_job` validates and normalises (cheap, raises 400s before anything queues: bad content, a schema
that cannot be enforced, an unknown forced tool); `embedded_loop.run_job` renders the chat template,
tokenizes and runs the token loop on the engine's worker thread.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from owstack.backends import embedded_grammar, embedded_tools, structured
from owstack.backends.embedded_model import EmbeddedModel
from owstack.backends.embedded_sampler import Settings, job_seed
from owstack.errors import InvalidRequest, UnsupportedContent
from owstack.types import JSON, ChatRequest

DEFAULT_TEMPERATURE = 0.7
DEFAULT_THINK_TAGS = ("<think>", "</think>")
MAX_TOP_LOGPROBS = 20


@dataclass(slots=True)
class Job:
    request_id: str
    messages: list[JSON]
    max_tokens: int | None
    settings: Settings
    #: the sampler seed; `fresh` when the request chose it (the prompt is then evaluated from an empty cache)
    seed: int
    fresh: bool
    stop: list[str]
    thinking_budget: int | None = None
    think_tags: tuple[str, str] = DEFAULT_THINK_TAGS
    tools: embedded_tools.ToolPlan | None = None
    #: GBNF constraining the answer (response_format, forced tool call), or None
    grammar: str | None = None
    #: None: no logprobs; else how many top alternatives per token
    logprobs: int | None = None
    #: the LoRA adapter to put on the context (backends/lora.py), None for the plain model
    adapter: str | None = None
    cancelled: bool = False


def build_job(backend: EmbeddedModel, request: ChatRequest) -> Job:
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
    tools = embedded_tools.plan(params)
    fmt = structured.output_format(params)
    forced = tools.forced if tools is not None else []
    auto = list(tools.functions.values()) if tools is not None and not forced else []
    grammar = embedded_grammar.job_grammar(fmt, forced, auto)
    if tools is not None and tools.system_text:
        messages = embedded_tools.with_tool_prompt(messages, tools)
    if fmt is not None and not forced:
        messages = _with_format_prompt(messages, fmt)
    seed = (
        params.get("seed") if isinstance(params.get("seed"), int) and not isinstance(params.get("seed"), bool) else None
    )
    return Job(
        request_id=uuid.uuid4().hex[:24],
        messages=messages,
        max_tokens=request.max_tokens,
        settings=Settings(
            temperature=_number(params, "temperature", DEFAULT_TEMPERATURE),
            top_p=_number(params, "top_p", 1.0),
            top_k=int(_number(params, "top_k", 0)),
            min_p=_number(params, "min_p", 0.0),
            repeat_penalty=_number(params, "repetition_penalty", 1.0),
            frequency_penalty=_number(params, "frequency_penalty", 0.0),
            presence_penalty=_number(params, "presence_penalty", 0.0),
        ),
        seed=job_seed(seed),
        fresh=seed is not None,
        stop=[s for s in stop if isinstance(s, str) and s],
        thinking_budget=params.get("thinking_budget") if isinstance(params.get("thinking_budget"), int) else None,
        think_tags=think_tags,
        tools=tools,
        grammar=grammar,
        logprobs=_logprobs(params),
        adapter=backend.lora.requested(request, backend.name),
    )


def _logprobs(params: JSON) -> int | None:
    if params.get("logprobs") is not True:
        return None
    top = params.get("top_logprobs") or 0
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}", param="top_logprobs")
    return top


def _with_format_prompt(messages: list[JSON], fmt: structured.OutputFormat) -> list[JSON]:
    """Tell the model what the grammar will hold it to: a small model fills a schema it has seen better."""
    text = "Answer with a single JSON object only."
    if fmt.kind == "json_schema":
        text += " It must follow this JSON schema:\n" + orjson.dumps(fmt.schema).decode()
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _apply_policy(backend: EmbeddedModel, request: ChatRequest) -> ChatRequest:
    from owstack.efficiency.policies import apply, translate

    translation = translate(request.reasoning, "llamacpp", backend.card)
    shaped = apply(translation, request)
    if translation.thinking_budget is not None:
        shaped.params["thinking_budget"] = translation.thinking_budget
    return shaped


def _number(params: JSON, name: str, default: float) -> float:
    value = params.get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _flatten(index: int, message: JSON, backend: EmbeddedModel) -> JSON:
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
