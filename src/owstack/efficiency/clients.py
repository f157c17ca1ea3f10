"""Where the harness sends its problems: an OpenAI-compatible URL, or the embedded engine in-process.

Both implement `Completer`: one chat completion per call, returning the answer text, the reasoning text
(from `reasoning_content` or an inline think span), token counts and the finish reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from owstack.efficiency.policies import HEADER, REQUEST_FIELD, Policy, apply, split_reasoning, translate
from owstack.types import ChatRequest

GATEWAY = "gateway"


class EvalError(Exception):
    """A harness failure with a one-line message for the user (backend unreachable, model not loadable)."""


@dataclass(frozen=True, slots=True)
class Reply:
    content: str
    reasoning: str | None
    completion_tokens: int | None
    reasoning_tokens: int
    finish_reason: str | None


class Completer(Protocol):
    async def start(self) -> None: ...

    async def complete(
        self, messages: list[dict[str, Any]], params: dict[str, Any], policy: Policy | None
    ) -> Reply: ...

    async def aclose(self) -> None: ...


def reply_from_body(body: dict[str, Any], usage: Any = None) -> Reply:
    """Read an OpenAI `chat.completion` body (and an already parsed `Usage`, when there is one)."""
    try:
        choice = body["choices"][0]
        message = choice.get("message") or {}
    except (KeyError, IndexError, TypeError):
        raise EvalError("the backend returned a response without choices") from None
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not reasoning and "</think>" in content:
        reasoning, content = split_reasoning(content)
    raw = body.get("usage") if usage is None else None
    completion = getattr(usage, "completion_tokens", None)
    reasoning_tokens = int(getattr(usage, "reasoning_tokens", 0) or 0)
    if isinstance(raw, dict):
        completion = raw.get("completion_tokens")
        details = raw.get("completion_tokens_details") or {}
        reasoning_tokens = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
    return Reply(
        content=content,
        reasoning=reasoning or None,
        completion_tokens=int(completion) if isinstance(completion, int) else None,
        reasoning_tokens=reasoning_tokens,
        finish_reason=choice.get("finish_reason"),
    )


class HTTPCompleter:
    """Any OpenAI-compatible server. With `engine="gateway"` the policy travels as the `reasoning_policy`
    field and the `x-owstack-reasoning` header (the owstack gateway applies it); with a raw engine name
    (vllm, sglang, ...) the harness translates the policy into that engine's dialect itself."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        engine: str = GATEWAY,
        api_key: str | None = None,
        timeout: float = 600.0,
    ) -> None:
        import httpx

        base = base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise EvalError(f"--backend: {base_url!r} is neither 'embedded' nor an http(s) URL")
        if base.count("/") == 2:  # scheme://host[:port] only: the OpenAI base is /v1
            base += "/v1"
        self.base_url, self.model, self.engine = base, model, engine
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), headers=headers)

    async def start(self) -> None:
        return None

    async def complete(self, messages: list[dict[str, Any]], params: dict[str, Any], policy: Policy | None) -> Reply:
        import httpx

        request = ChatRequest(model=self.model, messages=messages, params=dict(params))
        headers: dict[str, str] = {}
        if self.engine == GATEWAY:
            body_extra = {REQUEST_FIELD: str(policy)} if policy is not None else {}
            if policy is not None:
                headers[HEADER] = str(policy)
        else:
            request = apply(translate(policy, self.engine, None), request)
            body_extra = {}
        body = {
            **request.params,
            **body_extra,
            "model": self.model,
            "messages": request.messages,
            "stream": False,
        }
        try:
            response = await self._client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise EvalError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            detail = response.text[:300].replace("\n", " ")
            raise EvalError(f"{self.base_url} answered HTTP {response.status_code}: {detail}")
        try:
            data = response.json()
        except ValueError:
            raise EvalError(f"{self.base_url} did not return JSON") from None
        return reply_from_body(data)

    async def aclose(self) -> None:
        await self._client.aclose()


class EmbeddedCompleter:
    """The embedded llama.cpp engine (`owstack.backends.llamacpp.LlamaCppBackend`), in-process.

    `model` is a catalog id (default: the embedded SmolLM2-135M-Instruct) or a path to a GGUF file."""

    def __init__(self, model: str | None = None, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        self.model = model or "smollm2-135m-instruct"
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._backend: Any = None

    async def start(self) -> None:
        from pathlib import Path

        try:
            from owstack.backends.llamacpp import LlamaCppBackend
        except ImportError as exc:
            raise EvalError(f"the embedded engine is not available: {exc}") from None
        try:
            if self.model.endswith(".gguf") or Path(self.model).is_file():
                path = Path(self.model)
                if not path.is_file():
                    raise EvalError(f"--model: no GGUF file at {path}")
                self._backend = LlamaCppBackend.from_path(
                    str(path), name=path.stem, n_ctx=self.n_ctx, n_threads=self.n_threads
                )
            else:
                self._backend = LlamaCppBackend.from_catalog(self.model, n_ctx=self.n_ctx, n_threads=self.n_threads)
            await self._backend.start()
        except EvalError:
            raise
        except Exception as exc:  # the backend's own errors carry the reason (missing file, bad digest)
            message = getattr(exc, "message", None) or str(exc)
            raise EvalError(f"cannot load embedded model {self.model!r}: {message}") from None

    async def complete(self, messages: list[dict[str, Any]], params: dict[str, Any], policy: Policy | None) -> Reply:
        if self._backend is None:
            raise EvalError("the embedded engine was not started")
        request = ChatRequest(model=self._backend.model, messages=messages, params=dict(params), reasoning=policy)
        completion = await self._backend.complete(request)
        return reply_from_body(completion.body, completion.usage)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
