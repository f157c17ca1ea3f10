"""The control tokens of one model (or one template family), and one fast pass that makes them inert.

Where the list comes from, best first:

- `TokenSet.from_gguf(path)`: the served GGUF's own vocabulary (every CONTROL, USER_DEFINED and UNKNOWN
  token: all 17 of SmolLM2's, not just its three ChatML markers);
- `TokenSet.from_tokenizer(folder)`: a Hugging Face `tokenizer.json` (`added_tokens`) or
  `tokenizer_config.json` (`added_tokens_decoder`): every added token, special or not, since the
  tokenizer matches both literally in raw text (Qwen3's `<think>` is a non-special added token);
- `TokenSet.from_path(path)`: either of the above, as a backend's `tokenizer:` names it (an HTTP
  engine serving a fine-tune with tokens of its own);
- `TokenSet.for_family(name)`: for HTTP engines, the family's full list generated from the real
  tokenizers (`security/data/special_tokens.yaml`) plus the catalog's family tokens.

Every set also carries the generic ones (`<|name|>`, `<｜name｜>`, Mistral's `[INST]` family, think and
tool tags): content meant for one model must not forge a turn when a fallback sends it to another.

Matching is one regex pass over token *shapes* (`<…>`, `[…]` without spaces) whose hits are looked up
in a set, so a vocabulary of a thousand reserved tokens costs no more than three; tokens of other
shapes are matched as literals. Text without `<` or `[` is returned at once.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from owstack.catalog import load_data
from owstack.security.data_files import load
from owstack.security.guard.gguf_tokens import special_tokens

ZWSP = "\u200b"
_SHAPE = r"<[^<>\s]{1,96}>|\[[^\[\]\s]{1,48}\]"
_SHAPED = re.compile(rf"^(?:{_SHAPE})$")
_MARKUP = re.compile(r"[<>\[\]|｜]")


@dataclass(frozen=True)
class TokenSet:
    """Literal tokens plus patterns (for numbered fillers such as `<unused12>`), compiled once."""

    name: str
    tokens: frozenset[str]
    patterns: tuple[str, ...] = ()
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _starts: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _full: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A zero-width look-ahead at every candidate start, so that a shape that is not a token
        # (`<[INST]>`) never swallows a token inside it.
        odd = sorted((t for t in self.tokens if not _SHAPED.match(t)), key=lambda t: (-len(t), t))
        parts = [f"(?P<p>{'|'.join(self.patterns)})"] if self.patterns else []
        if odd:
            parts.append(f"(?P<l>{'|'.join(re.escape(t) for t in odd)})")
        parts.append(f"(?P<s>{_SHAPE})")
        starts = sorted({"<", "["} | {t[0] for t in odd})
        first = "".join(re.escape(c) for c in starts)
        object.__setattr__(self, "_regex", re.compile(f"(?=[{first}])(?={'|'.join(parts)})"))
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_full", re.compile("|".join(self.patterns)) if self.patterns else None)

    def union(self, other: TokenSet, name: str | None = None) -> TokenSet:
        return TokenSet(name or f"{self.name}+{other.name}", self.tokens | other.tokens, self.patterns + other.patterns)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every control token in `text`, by start; a token inside another is listed too
        (`<｜[INST]｜>` holds Mistral's `[INST]`: breaking only the outer match would leave it whole).

        So is a token spelt with characters that NFKC folds to ASCII (`＜｜im_start｜＞`, `﹤`, `<|ｉｍ_…|>`):
        a Hugging Face tokenizer matches an added token marked `normalized` (the default for tokens added
        with `add_tokens`, as a fine-tune's own are) in the normalised text, and an NFKC normaliser folds
        them back. ASCII text never pays for it; other text only when it holds a full-width `＜`/`［`."""
        out = self._spans(text) if any(c in text for c in self._starts) else []
        if text.isascii() or not any(c in text for c in _FOLD_STARTS):
            return out
        folded = self._spans(text.translate(_nfkc_ascii()))  # one character for one: the offsets hold
        if not folded:
            return out
        ends = dict(folded)
        ends.update(out)
        return sorted(ends.items())

    def _spans(self, text: str) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        tokens = self.tokens
        for m in self._regex.finditer(text):
            group = m.lastgroup
            token = m.group(group) if group else ""
            if not token or (group == "s" and token not in tokens and (token.isascii() or not self._folds(token))):
                continue
            out.append((m.start(), m.start() + len(token)))
        return out

    def _folds(self, shape: str) -> bool:
        """A shape that is no token as written, but is one once NFKC folds it (`<|ｉｍ_start|>`)."""
        folded = unicodedata.normalize("NFKC", shape)
        return folded != shape and (folded in self.tokens or bool(self._full and self._full.fullmatch(folded)))

    def neutralize(self, text: str) -> tuple[str, int]:
        """`text` with every control token made inert (U+200B after its first character), and the count."""
        found = self.spans(text)
        if not found:
            return text, 0
        out: list[str] = []
        done = 0
        for start, _ in found:
            out += [text[done : start + 1], ZWSP]
            done = start + 1
        out.append(text[done:])
        return "".join(out), len(found)

    # -- sources -------------------------------------------------------------------------------------

    @classmethod
    def from_gguf(cls, path: str | Path) -> TokenSet:
        return cls(f"gguf:{Path(path).name}", _usable(special_tokens(path))).union(generic())

    @classmethod
    def from_tokenizer(cls, folder: str | Path) -> TokenSet:
        """Added tokens of `tokenizer.json`, else of `tokenizer_config.json`; raises OSError/ValueError."""
        folder = Path(folder)
        found: list[str] = []
        tokenizer = folder / "tokenizer.json"
        if tokenizer.is_file():
            data = json.loads(tokenizer.read_text(encoding="utf-8"))
            found += [t["content"] for t in data.get("added_tokens") or [] if isinstance(t, dict) and "content" in t]
        config = folder / "tokenizer_config.json"
        if not found and config.is_file():
            data = json.loads(config.read_text(encoding="utf-8"))
            decoder = data.get("added_tokens_decoder") or {}
            found += [v["content"] for v in decoder.values() if isinstance(v, dict) and "content" in v]
        if not found:
            raise ValueError(f"{folder}: no added tokens in tokenizer.json or tokenizer_config.json")
        return cls(f"tokenizer:{folder.name}", _usable(found)).union(generic())

    @classmethod
    def from_path(cls, path: str | Path) -> TokenSet:
        """A `.gguf` file, a tokenizer folder, or its `tokenizer.json`/`tokenizer_config.json`."""
        path = Path(path).expanduser()
        if path.suffix == ".gguf":
            return cls.from_gguf(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        return cls.from_tokenizer(path if path.is_dir() else path.parent)

    @classmethod
    def for_family(cls, family: str) -> TokenSet:
        return _family_set(family)


@cache
def _nfkc_ascii() -> dict[int, str]:
    """A `translate` table of the characters NFKC turns into one ASCII character a control token is spelt
    with (a letter, a digit or one of `<>[]|_/-.:@`): full-width and small forms, mathematical letters ..."""
    table: dict[int, str] = {}
    for cp in range(0x80, 0x20000):
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1 and folded.isascii() and (folded.isalnum() or folded in "<>[]|_/-.:@"):
            table[cp] = folded
    return table


#: the characters NFKC folds to `<` or `[` (full-width, small and vertical forms)
_FOLD_STARTS = "\uff1c\ufe64\uff3b\ufe47"


def _usable(tokens: Iterable[str]) -> frozenset[str]:
    """Tokens worth neutralising: markup-like strings (whitespace runs and single characters that some
    vocabularies mark USER_DEFINED are ordinary text, and cannot forge a turn)."""
    return frozenset(t for t in tokens if len(t) >= 3 and not t.isspace() and _MARKUP.search(t))


def _expand(spec: dict[str, Any]) -> set[str]:
    out = set(spec.get("tokens") or ()) | set(spec.get("think") or ())
    for r in spec.get("ranges") or ():
        out |= {str(r["template"]).format(n) for n in range(int(r["first"]), int(r["last"]) + 1)}
    return out


def _lineage(families: dict[str, Any], name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    while name in families and name not in seen:
        seen.add(name)
        out.append(families[name] or {})
        name = str(families[name].get("extends") or "")
    return out


@cache
def generic() -> TokenSet:
    data = load_data("control_tokens")["generic"]
    return TokenSet("generic", frozenset(data["tokens"]), tuple(data["patterns"]))


@cache
def _family_set(family: str) -> TokenSet:
    catalog = load_data("control_tokens")["families"]
    shipped = load("special_tokens")["families"]
    tokens: set[str] = set()
    patterns: list[str] = []
    for spec in _lineage(catalog, family) + _lineage(shipped, family):
        tokens |= _expand(spec)
        patterns += list(spec.get("patterns") or ())
    return TokenSet(family, frozenset(tokens), tuple(patterns)).union(generic(), family)


def family_names() -> tuple[str, ...]:
    """The template families the data files know (a model's catalog `template:` value)."""
    return tuple(sorted(set(load_data("control_tokens")["families"]) | set(load("special_tokens")["families"])))
