"""llama.cpp's real grammar parser, in process, on the embedded model's vocabulary (no weights evaluated)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _vocab() -> Any:
    import llama_cpp

    from owstack.catalog.models import embedded_gguf_path, find_card

    llm = llama_cpp.Llama(
        model_path=str(embedded_gguf_path(find_card("smollm2-135m-instruct"))), vocab_only=True, verbose=False
    )
    _vocab.keep = llm  # type: ignore[attr-defined]  # the vocabulary lives as long as the model object
    return llama_cpp.llama_model_get_vocab(llm.model)


def compiles(grammar: str) -> bool:
    """True when llama.cpp builds a grammar sampler from `grammar` (NULL: it refused the text)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(_vocab(), grammar.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True
