"""Reasoning policies: parse, resolve by precedence, translate into each engine's dialect, apply.

A policy is one of

    off          thinking disabled (Qwen3.5 / Nemotron `enable_thinking: false`,
                 Mistral `reasoning_effort: none`)
    budget:N     at most N thinking tokens (vLLM `thinking_token_budget`, SGLang strict thinking, embedded:
                 the end-of-thinking marker is forced after N tokens); `budget:0` is the same as `off`
    concise      the OPSDC teacher instruction as a system message (`concise:v1` or `concise:v2`)
    default      the engine's own behaviour (overrides a tenant or layer policy)

Precedence (first one set wins): the request's `reasoning_policy` field, the `x-owstack-reasoning` header,
the tenant's `reasoning`, the layer's entry in the `reasoning:` config section.

`translate` turns a policy into a `Translation` for one engine; `apply` merges it into a copy of a
`ChatRequest` (the gateway applies it per attempt, since a fallback may change the engine). Where an
engine has no lever for a policy the translation says so in `warnings` and uses the nearest honest lever.
The table is documented in docs/efficiency.md.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from owstack.errors import InvalidRequest
from owstack.types import ChatRequest

REQUEST_FIELD = "reasoning_policy"
HEADER = "x-owstack-reasoning"
ENGINES: tuple[str, ...] = ("llamacpp", "vllm", "sglang", "ollama", "llamacpp-server", "tgi", "tei", "openai")
ALLOWED_FORMS = "off, budget:N (N >= 0), concise, concise:v1, concise:v2, default"
MAX_BUDGET = 10_000_000
DEFAULT_TAGS: tuple[str, str] = ("<think>", "</think>")

PolicyKind = Literal["off", "budget", "concise", "default"]


@dataclass(frozen=True, slots=True)
class Policy:
    kind: PolicyKind
    budget: int | None = None
    concise_version: str = "v1"

    def __str__(self) -> str:
        if self.kind == "budget":
            return f"budget:{self.budget}"
        if self.kind == "concise":
            return f"concise:{self.concise_version}"
        return self.kind


_POLICY = re.compile(r"^(?P<kind>[a-z]+)\s*(?::\s*(?P<arg>\S+))?$")


def parse_policy(text: str, *, param: str = REQUEST_FIELD, concise_version: str = "v1") -> Policy:
    """Parse `off`, `budget:512` (`budget: 512`), `concise`, `concise:v2` or `default` (case-insensitive).

    Raises `InvalidRequest(param=param)` naming the allowed forms for anything else.
    """
    from owstack.efficiency.instructions import VERSIONS

    if not isinstance(text, str):
        raise InvalidRequest(f"{param or 'policy'} must be a string, one of: {ALLOWED_FORMS}", param=param)
    at = f"{param}: " if param else ""
    match = _POLICY.match(text.strip().lower())
    kind, arg = (match.group("kind"), match.group("arg")) if match else (None, None)
    if kind == "off" and arg is None:
        return Policy(kind="off")
    if kind == "default" and arg is None:
        return Policy(kind="default")
    if kind == "concise":
        version = arg or concise_version
        if version in VERSIONS:
            return Policy(kind="concise", concise_version=version)
        raise InvalidRequest(f"{at}unknown concise instruction {arg!r}; use concise:v1 or concise:v2", param=param)
    if kind == "budget":
        if arg is None or not re.fullmatch(r"[+-]?\d+", arg):
            raise InvalidRequest(f"{at}budget needs a whole number of tokens, e.g. budget:512", param=param)
        budget = int(arg)
        if budget < 0:
            raise InvalidRequest(f"{at}the thinking budget must be >= 0 tokens (got {budget})", param=param)
        if budget > MAX_BUDGET:
            raise InvalidRequest(f"{at}the thinking budget must be <= {MAX_BUDGET} tokens", param=param)
        return Policy(kind="budget", budget=budget)
    raise InvalidRequest(f"{at}unknown reasoning policy {text!r}; allowed: {ALLOWED_FORMS}", param=param)


def resolve(
    request_value: str | None,
    header_value: str | None,
    tenant_value: str | None,
    layer_value: str | None,
    *,
    concise_version: str = "v1",
) -> Policy | None:
    """The policy that applies: request field > header > tenant > layer. None when none is set."""
    for value, param in (
        (request_value, REQUEST_FIELD),
        (header_value, HEADER),
        (tenant_value, "tenant.reasoning"),
        (layer_value, "reasoning.layers"),
    ):
        if value is not None and (not isinstance(value, str) or value.strip()):
            return parse_policy(value, param=param, concise_version=concise_version)
    return None


@dataclass(frozen=True, slots=True)
class Translation:
    """A policy in one engine's dialect. Treat `body` as read-only."""

    #: fields to deep-merge into the upstream JSON body
    body: dict[str, Any] = field(default_factory=dict)
    #: the concise instruction, inserted as (or in front of) the system message
    system_prefix: str | None = None
    #: embedded engine only: force the end-of-thinking marker after this many thinking tokens
    thinking_budget: int | None = None
    thinking_off: bool = False
    think_tags: tuple[str, str] = DEFAULT_TAGS
    #: where the engine has no exact lever: what was done instead
    warnings: tuple[str, ...] = ()


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def card_switch(card: Any) -> str | None:
    """The model card's thinking switch: chat_template_kwargs, reasoning_effort, none, or None (unknown)."""
    switch = _get(_get(card, "reasoning"), "switch")
    if isinstance(switch, str) and switch:
        return switch
    family = str(_get(card, "template") or "").lower()
    if family.startswith("mistral"):
        return "reasoning_effort"
    if family.startswith(("qwen", "nemotron")):
        return "chat_template_kwargs"
    return None


def card_tags(card: Any) -> tuple[str, str]:
    reasoning = _get(card, "reasoning")
    for name in ("think_tags", "tags"):
        tags = _get(reasoning, name)
        if isinstance(tags, list | tuple) and len(tags) == 2 and all(isinstance(t, str) for t in tags):
            return (tags[0], tags[1])
    start, end = _get(reasoning, "think_start"), _get(reasoning, "think_end")
    if isinstance(start, str) and isinstance(end, str):
        return (start, end)
    return DEFAULT_TAGS


def translate(policy: Policy | None, engine: str, card: Any = None) -> Translation:
    """`policy` in `engine`'s dialect for the model described by `card` (a catalog ModelCard or None)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    tags = card_tags(card)
    if policy is None or policy.kind == "default":
        return Translation(think_tags=tags)
    if policy.kind == "concise":
        from owstack.efficiency.instructions import instruction

        return Translation(system_prefix=instruction(policy.concise_version), think_tags=tags)
    switch = card_switch(card)
    if engine == "llamacpp":
        return _embedded(policy, card, switch, tags)
    if switch == "none":
        name = _get(card, "name") or _get(card, "id") or "this model"
        return Translation(
            thinking_off=policy.kind == "off",
            think_tags=tags,
            warnings=(f"{name} does not think; reasoning policy {policy} changes nothing",),
        )
    if policy.kind == "off" or policy.budget == 0:
        return _off(engine, card, switch, tags)
    return _budget(engine, card, tags, policy.budget or 0)


def _embedded(policy: Policy, card: Any, switch: str | None, tags: tuple[str, str]) -> Translation:
    body: dict[str, Any] = {}
    if switch == "none" and policy.kind == "off":
        return Translation(
            thinking_off=True, think_tags=tags, warnings=("this model does not think; off changes nothing",)
        )
    if policy.kind == "off" or policy.budget == 0:
        if switch == "chat_template_kwargs":
            body = _off_body(card, switch)
        return Translation(body=body, thinking_off=True, thinking_budget=0, think_tags=tags)
    return Translation(thinking_budget=policy.budget, think_tags=tags)


def _off_body(card: Any, switch: str | None) -> dict[str, Any]:
    fields = getattr(_get(card, "reasoning"), "request_fields", None)
    if callable(fields) and switch in ("chat_template_kwargs", "reasoning_effort"):
        body = fields(False)
        if isinstance(body, dict) and body:
            return body
    if switch == "reasoning_effort":
        return {"reasoning_effort": "none"}
    return {"chat_template_kwargs": {"enable_thinking": False}}


def _off(engine: str, card: Any, switch: str | None, tags: tuple[str, str]) -> Translation:
    if engine in ("vllm", "sglang", "llamacpp-server"):
        return Translation(body=_off_body(card, switch), thinking_off=True, think_tags=tags)
    if engine in ("ollama", "openai"):
        # Ollama's OpenAI-compatible API maps reasoning_effort "none" to think=false; OpenAI (GPT-5.1+)
        # takes "none" as "no reasoning".
        return Translation(body={"reasoning_effort": "none"}, thinking_off=True, think_tags=tags)
    return Translation(
        think_tags=tags,
        warnings=(f"{engine} has no per-request switch to turn thinking off; the request is sent unchanged",),
    )


def _budget(engine: str, card: Any, tags: tuple[str, str], budget: int) -> Translation:
    if engine == "vllm":
        # needs the server started with --reasoning-parser and --reasoning-config (start/end strings)
        return Translation(body={"thinking_token_budget": budget}, thinking_budget=budget, think_tags=tags)
    if engine == "sglang":
        # enforced exactly when the server runs with --enable-strict-thinking and a reasoning parser
        return Translation(body={"custom_params": {"thinking_budget": budget}}, thinking_budget=budget, think_tags=tags)
    if engine == "llamacpp-server":
        # llama-server reasoning-budget sampler, per request (recent builds; --reasoning-budget caps it)
        return Translation(body={"thinking_budget_tokens": budget}, thinking_budget=budget, think_tags=tags)
    # a model whose own reasoning_effort takes fixed values (Mistral Small 4: none/high) has no "low"
    values = _get(_get(card, "reasoning"), "values") or () if card_switch(card) == "reasoning_effort" else ()
    if engine in ("ollama", "openai") and (not values or "low" in values):
        return Translation(
            body={"reasoning_effort": "low"},
            think_tags=tags,
            warnings=(
                f"{engine} has no per-request thinking-token budget; "
                "sent reasoning_effort=low instead (no token guarantee)",
            ),
        )
    return Translation(
        think_tags=tags,
        warnings=(f"{engine} has no per-request thinking budget; the request is sent unchanged",),
    )


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: `extra`'s values win; nested dicts are merged, never mutated."""
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = deep_merge(current, value)
        elif isinstance(value, Mapping):
            out[key] = deep_merge({}, value)
        else:
            out[key] = value
    return out


def apply(translation: Translation, request: ChatRequest) -> ChatRequest:
    """A copy of `request` with the translation's body merged into `params` and its system prefix inserted."""
    params = deep_merge(request.params, translation.body) if translation.body else dict(request.params)
    messages = list(request.messages)
    if translation.system_prefix:
        messages = _with_system_prefix(messages, translation.system_prefix)
    return dataclasses.replace(request, params=params, messages=messages)


def _with_system_prefix(messages: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    if messages and messages[0].get("role") in ("system", "developer"):
        first = dict(messages[0])
        content = first.get("content")
        if isinstance(content, str):
            first["content"] = f"{prefix}\n\n{content}" if content else prefix
        elif isinstance(content, list):
            first["content"] = [{"type": "text", "text": prefix}, *content]
        else:
            first["content"] = prefix
        return [first, *messages[1:]]
    return [{"role": "system", "content": prefix}, *messages]


def split_reasoning(text: str, tags: tuple[str, str] = DEFAULT_TAGS) -> tuple[str | None, str]:
    """Separate an inline think span from the answer: `(reasoning or None, answer)`.

    Handles a whole span (`<think>..</think>answer`), a span whose opening tag was in the prompt
    (`..</think>answer`), and an unfinished span (`<think>..` cut off: all of it is reasoning).
    """
    start, end = tags
    head, sep, tail = text.partition(end)
    if sep:
        before, opened, inside = head.partition(start)
        reasoning = inside if opened else before
        if opened and before.strip():
            return reasoning.strip(), (before.strip() + "\n" + tail.strip()).strip()
        return reasoning.strip(), tail.strip()
    before, opened, inside = text.partition(start)
    if opened:
        return inside.strip(), before.strip()
    return None, text
