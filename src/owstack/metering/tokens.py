"""Token counting for requests whose upstream reported no usage (e.g. a stream without a usage chunk).

    counter = Tokenizers(config).for_backend("edge-local")
    counter.prompt(messages), counter.text(completion), counter.exact

A backend whose model has a GGUF file owstack can read (the embedded engine, or any backend whose
`catalog:` model ships one) is counted with that model's own vocabulary: `llama_cpp.Llama(path,
vocab_only=True)`, loaded once, lazily, by the ledger writer thread (never on a request's path). The
prompt is rendered with the GGUF's chat template in the sandbox, as the embedded engine renders it.
Any other model gets an estimate, 1 token per 4 characters plus 4 per message, and its ledger record
says so (`tokens_estimated`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.config.schema import BackendSection

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4


class TokenCounter(Protocol):
    #: True when counted with the model's own tokenizer
    exact: bool

    def text(self, text: str) -> int: ...

    def prompt(self, messages: list[dict[str, Any]]) -> int: ...


def message_text(message: dict[str, Any]) -> str:
    """The text of one OpenAI message: string content, text parts, and tool calls as JSON."""
    content = message.get("content")
    if isinstance(content, list):
        text = "\n".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    else:
        text = "" if content is None else str(content)
    calls = message.get("tool_calls")
    if calls:
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False, separators=(",", ":"))
    return text


class Estimate:
    """1 token per 4 characters (the usual rule of thumb for English with BPE vocabularies)."""

    exact = False

    def text(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def prompt(self, messages: list[dict[str, Any]]) -> int:
        return sum(TOKENS_PER_MESSAGE + self.text(message_text(m)) for m in messages if isinstance(m, dict))


class GGUFTokenizer:
    """A model's own vocabulary and chat template, read from its GGUF file (no weights loaded)."""

    exact = True

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama

        self.path = path
        self.llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self._lock = threading.Lock()  # shared by the gateway (usage chunks) and the ledger writer
        self.template: str | None = self.llm.metadata.get("tokenizer.chat_template")
        self.add_bos = self.llm.metadata.get("tokenizer.ggml.add_bos_token") == "true"

    def text(self, text: str) -> int:
        if not text:
            return 0
        with self._lock:
            return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def prompt(self, messages: list[dict[str, Any]]) -> int:
        """The rendered prompt's tokens, as the embedded engine counts them; without a usable template,
        the messages' text (exact tokens of the text, template tokens left out)."""
        flat = [{"role": str(m.get("role")), "content": message_text(m)} for m in messages if isinstance(m, dict)]
        if self.template:
            from owstack.security.templates import TemplateRenderError, render

            try:
                rendered = render(self.template, messages=flat, add_generation_prompt=True, bos_token="", eos_token="")
            except TemplateRenderError:
                rendered = None
            if rendered is not None:
                with self._lock:
                    return len(self.llm.tokenize(rendered.encode("utf-8"), add_bos=self.add_bos, special=True))
        return sum(self.text(m["content"]) for m in flat)


def gguf_path(section: BackendSection) -> Path | None:
    """The GGUF file holding this backend's vocabulary, if owstack has one locally."""
    if section.engine == "llamacpp" and section.model_path:
        return Path(section.model_path).expanduser()
    from owstack.catalog.models import embedded_gguf_path, find_card
    from owstack.errors import ConfigError

    card = find_card(section.catalog or section.model)
    if card is None or card.gguf is None:
        return None
    try:
        return embedded_gguf_path(card)
    except ConfigError:
        return None


class Tokenizers:
    """One counter per backend, created on first use, off the event loop (the ledger writer's thread,
    or the gateway through `asyncio.to_thread`). One instance per gateway: `MeterStage.tokenizers`."""

    def __init__(self, config: Config) -> None:
        self._sections = dict(config.file.backends)
        self._by_backend: dict[str | None, TokenCounter] = {}
        self._by_path: dict[Path, TokenCounter] = {}
        self._estimate = Estimate()
        self._lock = threading.Lock()

    def for_backend(self, backend: str | None) -> TokenCounter:
        counter = self._by_backend.get(backend)
        if counter is None:
            with self._lock:
                counter = self._by_backend.get(backend)
                if counter is None:
                    counter = self._by_backend[backend] = self._load(backend)
        return counter

    def _load(self, backend: str | None) -> TokenCounter:
        section = self._sections.get(backend) if backend is not None else None
        path = gguf_path(section) if section is not None else None
        if path is None:
            return self._estimate
        cached = self._by_path.get(path)
        if cached is not None:
            return cached
        try:
            counter: TokenCounter = GGUFTokenizer(path)
        except Exception as exc:  # a missing or unreadable file must not stop metering
            log.warning("metering: cannot read the vocabulary of %s (%s); estimating its tokens", path, exc)
            counter = self._estimate
        self._by_path[path] = counter
        return counter
