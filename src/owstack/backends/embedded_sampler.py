"""Sampling and decoding for the embedded engine, on llama.cpp's own samplers but owned per job.

`Llama.generate` keeps one seed on the model object (a request without a seed after one with a seed
reused it), builds its grammar sampler without checking the result (a grammar llama.cpp rejects becomes a
NULL sampler in the chain: a segfault at the first token), and hands out no logits. So each job gets:

- a `Sampler`: penalties, top-k/top-p, temperature and a distribution seeded by the job (the request's
  `seed`, else a fresh random one), freed when the job ends;
- an optional grammar, applied *before* the chain and checked: if llama.cpp cannot build it the job fails
  with a 400, and if it ever leaves no token allowed, or the chain picks a token it rejected, the job
  ends with an error instead of handing llama.cpp a token that aborts the process (`llama_grammar_accept`
  throws across the C boundary on a rejected token, and aborts on an end-of-generation token while the
  grammar is incomplete);
- log-probabilities of the model's own distribution (raw logits, before penalties, temperature and
  grammar, as vLLM reports by default) when the request asks for `logprobs`.

`decode` evaluates the prompt, reusing the KV cache's common prefix, or from an empty cache when `fresh`
(a seeded job: what ran before must not be able to change the result).
"""

from __future__ import annotations

import ctypes
import secrets
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from owstack.errors import InvalidRequest, UpstreamError

JSON = dict[str, Any]
_UINT32 = 2**32
_PENALTY_WINDOW = 64


@dataclass(frozen=True, slots=True)
class Settings:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


def job_seed(seed: int | None) -> int:
    """A uint32 seed: the request's (any int, folded), else random. Never llama.cpp's "random" sentinel."""
    if seed is None:
        return secrets.randbelow(_UINT32 - 1)
    value = seed % _UINT32
    return value if value != _UINT32 - 1 else _UINT32 - 2


class Sampler:
    """One job's sampler chain (+ grammar). Use `close()` (or a `with` block) to free the C objects."""

    def __init__(self, llm: Any, settings: Settings, seed: int, grammar: str | None = None) -> None:
        import llama_cpp

        self._c = llama_cpp
        self.llm = llm
        self.vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = int(llm.n_vocab())
        self.chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        self.grammar: Any = None
        try:
            self._build(settings, seed)
            if grammar is not None:
                self.grammar = llama_cpp.llama_sampler_init_grammar(self.vocab, grammar.encode("utf-8"), b"root")
                if not self.grammar:
                    self.grammar = None
                    raise InvalidRequest(
                        "the output constraint could not be compiled into a grammar by the embedded engine",
                        code="invalid_schema",
                    )
        except BaseException:
            self.close()
            raise
        self._buffer = (llama_cpp.llama_token_data * self.n_vocab)()
        self._view = np.ctypeslib.as_array(self._buffer)
        self._ids = np.arange(self.n_vocab, dtype=np.int32)

    def _build(self, s: Settings, seed: int) -> None:
        c = self._c
        add = c.llama_sampler_chain_add
        if (s.repeat_penalty, s.frequency_penalty, s.presence_penalty) != (1.0, 0.0, 0.0):
            # llama.cpp's C function takes (last_n, repeat, freq, present); llama-cpp-python 0.3's binding
            # still declares a leading n_vocab, so the window goes in both integer slots.
            penalties = c.llama_sampler_init_penalties(
                _PENALTY_WINDOW, _PENALTY_WINDOW, s.repeat_penalty, s.frequency_penalty, s.presence_penalty
            )
            add(self.chain, penalties)
        if s.temperature <= 0:
            add(self.chain, c.llama_sampler_init_greedy())
            return
        if s.top_k > 0:
            add(self.chain, c.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            add(self.chain, c.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            add(self.chain, c.llama_sampler_init_min_p(s.min_p, 1))
        add(self.chain, c.llama_sampler_init_temp(s.temperature))
        add(self.chain, c.llama_sampler_init_dist(seed))

    def logits(self) -> np.ndarray:
        pointer = self._c.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def sample(self) -> int:
        """The next token from the last evaluated position; accepted into the chain (and grammar)."""
        c = self._c
        if self.grammar is None:
            return int(c.llama_sampler_sample(self.chain, self.llm.ctx, -1))
        view = self._view
        logits = self.logits()
        array = self._fill(logits)
        c.llama_sampler_apply(self.chain, ctypes.byref(array))
        token = self._selected(array)
        # Most tokens the model wants are ones the grammar allows: check that one alone (as llama.cpp's own
        # common sampler does) and run the grammar over the whole vocabulary only when it is refused.
        single = (c.llama_token_data * 1)(c.llama_token_data(token, float(logits[token]), 0.0))
        one = c.llama_token_data_array(
            data=ctypes.cast(single, c.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        c.llama_sampler_apply(self.grammar, ctypes.byref(one))
        if not np.isfinite(single[0].logit):
            array = self._fill(logits)
            c.llama_sampler_apply(self.grammar, ctypes.byref(array))
            allowed = np.isfinite(view["logit"])
            if not allowed.any():
                raise UpstreamError("the output grammar reached a state no token satisfies", code="grammar_dead_end")
            c.llama_sampler_apply(self.chain, ctypes.byref(array))
            token = self._selected(array)
            if not allowed[token]:
                raise UpstreamError("the sampler picked a token the grammar rejects", code="grammar_dead_end")
        c.llama_sampler_accept(self.chain, token)
        if not c.llama_vocab_is_eog(self.vocab, token):
            c.llama_sampler_accept(self.grammar, token)
        return token

    def _fill(self, logits: np.ndarray) -> Any:
        view = self._view
        view["id"] = self._ids
        view["logit"] = logits
        view["p"] = 0.0
        c = self._c
        return c.llama_token_data_array(
            data=ctypes.cast(self._buffer, c.llama_token_data_p), size=self.n_vocab, selected=-1, sorted=False
        )

    def _selected(self, array: Any) -> int:
        if not 0 <= array.selected < array.size:
            raise UpstreamError("the sampler selected no token", code="sampler_error")
        return int(array.data[array.selected].id)

    def close(self) -> None:
        c = self._c
        if self.grammar is not None:
            c.llama_sampler_free(self.grammar)
            self.grammar = None
        if self.chain is not None:
            c.llama_sampler_free(self.chain)
            self.chain = None

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Logprobs:
    """OpenAI `logprobs.content` entries for sampled tokens, from the model's raw distribution."""

    def __init__(self, llm: Any, sampler: Sampler, top: int) -> None:
        self.llm = llm
        self.sampler = sampler
        self.top = top
        self._logits: np.ndarray | None = None

    def capture(self) -> None:
        """Keep the current position's log-softmax (call before sampling: the logits change after)."""
        raw = self.sampler.logits().astype(np.float64)
        peak = raw.max()
        self._logits = raw - (peak + np.log(np.exp(raw - peak).sum()))

    def entry(self, token: int) -> JSON:
        assert self._logits is not None
        lp = self._logits
        out = self._token(token, float(lp[token]))
        if self.top:
            best = np.argpartition(-lp, self.top)[: self.top]
            best = best[np.argsort(-lp[best])]
            out["top_logprobs"] = [self._token(int(t), float(lp[t])) for t in best]
        else:
            out["top_logprobs"] = []
        return out

    def _token(self, token: int, logprob: float) -> JSON:
        raw = bytes(self.llm.detokenize([token], special=True))
        return {"token": raw.decode("utf-8", "replace"), "logprob": max(logprob, -9999.0), "bytes": list(raw)}


def decode(llm: Any, tokens: list[int], pick: Callable[[], int], *, fresh: bool) -> Generator[int, None, None]:
    """Evaluate `tokens`, then yield one sampled token after another (the caller stops when it wants).

    A token is evaluated when the caller asks for the next one, so the KV cache never holds a token that
    was not kept.
    """
    _prefill(llm, tokens, fresh)
    while True:
        token = pick()
        yield token
        llm.eval([token])


def _prefill(llm: Any, tokens: list[int], fresh: bool) -> None:
    reuse = 0
    if not fresh and llm.n_tokens > 0:
        cached = np.asarray(llm.input_ids[: min(llm.n_tokens, len(tokens))])
        mismatch = np.flatnonzero(cached != np.asarray(tokens[: len(cached)], dtype=cached.dtype))
        common = int(mismatch[0]) if mismatch.size else len(cached)
        reuse = min(common, len(tokens) - 1)  # evaluate at least one token: fresh logits to sample from
    if reuse > 0 and llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
        llm.n_tokens = reuse
        llm.eval(tokens[reuse:])
        return
    llm.reset()
    llm._ctx.kv_cache_clear()
    llm.eval(tokens)
