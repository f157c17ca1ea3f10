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

The token lists live in `catalog/data/control_tokens.yaml` (per family, with sources).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from owstack.catalog import load_data

ZWSP = "\u200b"
_FAST_PATH_CHARS = ("<", "[")


def _family_tokens(families: dict[str, Any], name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    spec = families.get(name)
    if spec is None or name in seen:
        return set()
    tokens = set(spec.get("tokens") or ()) | set(spec.get("think") or ())
    parent = spec.get("extends")
    if parent:
        tokens |= _family_tokens(families, parent, seen | {name})
    return tokens


def family_names() -> tuple[str, ...]:
    """The template families the data file knows (a model's catalog `template:` value)."""
    return tuple(sorted(load_data("control_tokens")["families"]))


@cache
def _pattern(family: str) -> re.Pattern[str]:
    data = load_data("control_tokens")
    tokens = _family_tokens(data["families"], family) | set(data["generic"]["tokens"])
    # Longest first so that a token that is a prefix of another never wins the alternation.
    literals = [re.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t))]
    return re.compile("|".join([*data["generic"]["patterns"], *literals]))


@cache
def all_tokens_pattern() -> re.Pattern[str]:
    """Every known family's tokens plus the generic set: used by the injection scanner."""
    data = load_data("control_tokens")
    tokens: set[str] = set(data["generic"]["tokens"])
    for name in data["families"]:
        tokens |= _family_tokens(data["families"], name)
    tokens -= {"<s>", "</s>", "<bos>", "<eos>"}  # ordinary HTML/XML: only inert for their own families
    literals = [re.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t))]
    return re.compile("|".join([*data["generic"]["patterns"], *literals]))


def _inert(match: re.Match[str]) -> str:
    token = match.group()
    return token[0] + ZWSP + token[1:]


def neutralize(text: str, family: str) -> tuple[str, int]:
    """Return `text` with chat-template control tokens made inert, and how many were replaced.

    `family` is the model's template family from the catalog (`chatml`, `llama3`, `mistral`, `qwen3`,
    `nemotron`, `smollm2`, ...). Its tokens and the generic set (think tags, every `<|name|>` token, the
    Mistral `[INST]` family, Gemma turn markers, DeepSeek's `<｜name｜>`) get a U+200B inserted after their
    first character; see the module docstring for why. An unknown family gets the generic set only.
    Linear time: one precompiled regex of literals and bounded classes; text without `<` or `[` is
    returned untouched without running it.
    """
    if not any(c in text for c in _FAST_PATH_CHARS):
        return text, 0
    return _pattern(family).subn(_inert, text)
