"""Make chat-template control tokens in untrusted text inert.

Why a zero-width space. A served model's tokenizer turns the exact spelling of a special token into that
token: llama.cpp's `parse_special`, Hugging Face's added-token splitter (it matches on the raw text, before
any normaliser) and tiktoken's `allowed_special` all match the literal string. Inserting U+200B ZERO WIDTH
SPACE after the token's first character (`<|im_start|>` -> `<\u200b|im_start|>`) breaks that literal match,
so the text can no longer close a turn or open a forged one, while a model reading it still sees the
same characters and can quote or discuss them. U+200B has no compatibility decomposition, so NFC/NFKC
normalisers do not undo it. A full-width look-alike was rejected: NFKC folds `［INST］` back to `[INST]`,
and DeepSeek's own special tokens are spelt with FULLWIDTH VERTICAL LINE (`<｜User｜>`), so replacing `|`
with `｜` would *create* tokens for that family.

Which tokens: a model's full special-token list, read from its GGUF or tokenizer files when they are at
hand, else the family's list generated from the real tokenizers (`token_sets`).
"""

from __future__ import annotations

import re
from functools import cache

from owstack.catalog import load_data
from owstack.security.guard.token_sets import ZWSP, TokenSet, family_names

__all__ = ["ZWSP", "TokenSet", "all_tokens_pattern", "family_names", "neutralize"]


def neutralize(text: str, family: str | TokenSet) -> tuple[str, int]:
    """Return `text` with control tokens made inert, and how many were replaced.

    `family` is a `TokenSet` (a model's own list) or a template family name from the catalog (`chatml`,
    `llama3`, `mistral`, `qwen3`, `nemotron`, `smollm2`, ...); an unknown family gets the generic set.
    Text without `<` or `[` is returned untouched without running the scanner.
    """
    tokens = family if isinstance(family, TokenSet) else TokenSet.for_family(family)
    return tokens.neutralize(text)


@cache
def all_tokens_pattern() -> re.Pattern[str]:
    """Every known family's turn tokens plus the generic set: used by the injection scanner."""
    data = load_data("control_tokens")
    tokens: set[str] = set(data["generic"]["tokens"])
    for spec in data["families"].values():
        tokens |= set(spec.get("tokens") or ()) | set(spec.get("think") or ())
    tokens -= {"<s>", "</s>", "<bos>", "<eos>"}  # ordinary HTML/XML: only inert for their own families
    literals = [re.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t))]
    return re.compile("|".join([*data["generic"]["patterns"], *literals]))
