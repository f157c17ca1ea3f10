"""Where the injection scanner sees a control token: as written, and as a tokenizer or sanitiser may see it.

The neutraliser (`token_sets`) breaks what a tokenizer would match; the scanner (`detect`, OWS-GRD-020)
reports text that *tries* to forge a turn, which an attacker may spell so that only a later step makes
the token:

- characters NFKC folds to ASCII (`＜|im_start|＞`, `﹤|im_end|﹥`, `<|ｉｍ_start|>`, `［INST］`): a Hugging
  Face tokenizer with an NFKC normaliser matches a `normalized` added token in the folded text;
- zero-width and format characters inside the token (`<|im_\u200bstart|>`, a soft hyphen, a word joiner,
  a variation selector): invisible to a reader, and deleted by normalisers such as `BertNormalizer`'s
  `clean_text`. This includes owstack's own mark (`<\u200b|im_start|>`): text that held a token before the
  gateway neutralised it is still reported;
- a token nested in another (`<|im_<|im_start|>start|>`, `<|im_<repo_name>start|>`): a filter that deletes
  the tokens it knows, once, leaves the outer one whole.

Spans are in the original text. ASCII text without `<` or `[` costs one scan of its characters.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from functools import cache, reduce

from owstack.security.guard.token_sets import _FOLD_STARTS, TokenSet, _nfkc_ascii, family_names
from owstack.security.guard.tokens import all_tokens_pattern

#: fillers a reader does not see that are not of category Cf (hidden.py's list), and variation selectors
_EXTRA_INVISIBLE = (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0))


@cache
def _invisible() -> frozenset[str]:
    """Format characters (category Cf: zero-width spaces and joiners, bidi controls, soft hyphen, word
    joiner, BOM, tag characters) and the invisible fillers."""
    planes = (*range(0x80, 0x20000), *range(0xE0000, 0xE1000))  # none in planes 2 to 13
    formats = [chr(cp) for cp in planes if unicodedata.category(chr(cp)) == "Cf"]
    return frozenset(formats + [chr(cp) for cp in _EXTRA_INVISIBLE])


@cache
def _foldable() -> frozenset[str]:
    """The characters NFKC folds to an ASCII one a token is spelt with (`token_sets._nfkc_ascii`)."""
    return frozenset(chr(cp) for cp in _nfkc_ascii())


@cache
def _removable() -> TokenSet:
    """Every token of every family a filter might delete (the families' full lists, `<s>` included)."""
    return reduce(lambda a, b: a.union(b, "all"), (TokenSet.for_family(f) for f in family_names()))


class _Collapsed:
    """`text` with some ranges deleted, and the way back from its offsets to the text's."""

    def __init__(self, text: str, deleted: list[tuple[int, int]]) -> None:
        kept: list[str] = []
        self._at: list[int] = []  # where each deleted range sits in the collapsed text
        self._skip: list[int] = []  # characters deleted up to and including that range
        done = gone = 0
        for s, e in deleted:
            kept.append(text[done:s])
            done = e
            self._at.append(s - gone)
            gone += e - s
            self._skip.append(gone)
        kept.append(text[done:])
        self.text = "".join(kept)

    def index(self, i: int) -> int:
        k = bisect.bisect_right(self._at, i)
        return i + (self._skip[k - 1] if k else 0)

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self.index(start), self.index(end - 1) + 1


def control_token_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every control token the scanner knows (`all_tokens_pattern`), as written, after NFKC
    folding and deleting invisible characters, and after one pass that deletes every known token; sorted,
    a span inside another left out."""
    pattern = all_tokens_pattern()
    ascii_ = text.isascii()
    if "<" not in text and "[" not in text and (ascii_ or not any(c in text for c in _FOLD_STARTS)):
        return []  # every token the scanner knows opens with `<` or `[`, or a form NFKC folds to one
    found = {m.span() for m in pattern.finditer(text)}
    view: _Collapsed | None = None
    if not ascii_:
        chars = set(text)  # a large class in a regex costs ten times more than this
        folds = not chars.isdisjoint(_foldable())
        hidden = chars & _invisible()
        if folds or hidden:
            folded = text.translate(_nfkc_ascii()) if folds else text  # one character for one
            runs = re.finditer(f"[{''.join(map(re.escape, sorted(hidden)))}]+", folded) if hidden else ()
            view = _Collapsed(folded, [m.span() for m in runs])
            found |= {view.span(*m.span()) for m in pattern.finditer(view.text)}
    seen = view.text if view is not None else text
    inner = _removable().spans(seen)
    if inner:
        merged: list[tuple[int, int]] = []
        for s, e in inner:  # nested hits overlap: delete their union
            if merged and s < merged[-1][1]:
                merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
            else:
                merged.append((s, e))
        outer = _Collapsed(seen, merged)
        for m in pattern.finditer(outer.text):
            start, end = outer.span(*m.span())
            found.add(view.span(start, end) if view is not None else (start, end))
    out: list[tuple[int, int]] = []
    reach = -1
    for start, end in sorted(found, key=lambda s: (s[0], -s[1])):
        if end > reach:  # not inside a span found before it
            out.append((start, end))
            reach = end
    return out
