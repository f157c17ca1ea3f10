"""GBNF text that llama.cpp's grammar parser always accepts: escaped literals, character classes, named rules.

llama.cpp turns a grammar into a sampler with `llama_sampler_init_grammar`; a grammar it cannot parse
gives a NULL sampler, and llama-cpp-python adds that NULL to the sampler chain, which crashes the process
at the first token. So nothing here writes a character into a grammar unescaped, every repetition stays
under the parser's limit (`MAX_REPETITION_THRESHOLD`, 2000 in llama.cpp's src/llama-grammar.cpp), and rule
names are generated (`g12`), never derived from user text.

Character sets are lists of inclusive code-point ranges. `json_chars` writes a set as the characters of a
JSON string body: `"`, `\\` and control characters appear in their escaped form, so a string the grammar
allows is always valid JSON whose decoded text is in the set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

#: llama.cpp's grammar parser refuses larger `{m,n}` bounds
MAX_REPEAT = 2000
#: a grammar above this many characters is refused before it reaches the engine
MAX_GRAMMAR_CHARS = 400_000
MAX_CODEPOINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)

Ranges = list[tuple[int, int]]

#: JSON, with whitespace bounded so a small model cannot run away in it (as llama.cpp's own JSON grammar)
BUILTINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ws": (r'| " " | "\n" [ \t]{0,20}', ()),
    "json-char": (r'[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})', ()),
    "json-string": (r'"\"" json-char* "\""', ("json-char",)),
    "json-int": (r'"-"? ("0" | [1-9] [0-9]{0,15})', ()),
    "json-number": (r'json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?', ("json-int",)),
    "json-value": (
        r'json-object | json-array | json-string | json-number | "true" | "false" | "null"',
        ("json-object", "json-array", "json-string", "json-number"),
    ),
    "json-object": (
        r'"{" ws ( json-string ws ":" ws json-value ws ( "," ws json-string ws ":" ws json-value ws )* )? "}"',
        ("ws", "json-string", "json-value"),
    ),
    "json-array": (r'"[" ws ( json-value ws ( "," ws json-value ws )* )? "]"', ("ws", "json-value")),
}


class GrammarTooLarge(ValueError):
    """The grammar would exceed `MAX_GRAMMAR_CHARS`."""


@dataclass
class Rules:
    """Named rules of one grammar. `add` deduplicates identical bodies."""

    defs: dict[str, str] = field(default_factory=dict)
    _by_body: dict[str, str] = field(default_factory=dict)
    _count: int = 0
    _chars: int = 0

    def reserve(self) -> str:
        self._count += 1
        return f"g{self._count}"

    def define(self, name: str, body: str) -> str:
        self._chars += len(name) + len(body) + 6
        if self._chars > MAX_GRAMMAR_CHARS:
            raise GrammarTooLarge(f"the grammar would exceed {MAX_GRAMMAR_CHARS} characters")
        self.defs[name] = body
        return name

    def add(self, body: str) -> str:
        known = self._by_body.get(body)
        if known is not None:
            return known
        name = self.define(self.reserve(), body)
        self._by_body[body] = name
        return name

    def builtin(self, name: str) -> str:
        if name not in self.defs:
            body, deps = BUILTINS[name]
            self.define(name, body)
            for dep in deps:
                self.builtin(dep)
        return name

    def ref(self, expr: str) -> str:
        """A rule name for `expr` (itself when it already is one)."""
        return expr if _is_name(expr) else self.add(expr)

    def repeat(self, item: str, lo: int, hi: int | None, sep: str | None = None) -> str:
        """`item` repeated lo..hi times (hi None: unbounded), optionally separated by `sep`."""
        if lo > MAX_REPEAT or (hi is not None and hi > MAX_REPEAT):
            raise ValueError(f"repetition bound above {MAX_REPEAT}")
        name = self.ref(item)
        if sep is None:
            return _counted(name, lo, hi)
        if hi == 0:
            return '""'
        tail = _counted(self.ref(f"{sep} {name}"), max(lo - 1, 0), None if hi is None else hi - 1)
        both = f"{name} {tail}"
        return both if lo >= 1 else f"( {both} )?"

    def render(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.defs.items()]
        return "\n".join(lines) + "\n"


def _counted(name: str, lo: int, hi: int | None) -> str:
    if hi is None:
        return {0: f"{name}*", 1: f"{name}+"}.get(lo, f"{name}{{{lo},}}")
    if lo == hi:
        return '""' if lo == 0 else name if lo == 1 else f"{name}{{{lo}}}"
    if (lo, hi) == (0, 1):
        return f"{name}?"
    return f"{name}{{{lo},{hi}}}"


def _is_name(expr: str) -> bool:
    return bool(expr) and all(c.isascii() and (c.isalnum() or c == "-") for c in expr)


# ---- characters --------------------------------------------------------------------------------------


def _esc(c: int) -> str:
    if c < 0x80 and chr(c).isalnum():
        return chr(c)
    if c <= 0xFF:
        return f"\\x{c:02X}"
    if c <= 0xFFFF:
        return f"\\u{c:04X}"
    return f"\\U{c:08X}"


def literal(text: str) -> str:
    """A GBNF string literal matching exactly `text`."""
    if not text:
        return '""'
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F:
            out.append(ch)
        else:
            out.append(_esc(ord(ch)))
    return '"' + "".join(out) + '"'


def char_class(ranges: Ranges) -> str:
    parts = [_esc(lo) if lo == hi else f"{_esc(lo)}-{_esc(hi)}" for lo, hi in ranges]
    return "[" + "".join(parts) + "]"


def normalise(ranges: Ranges) -> Ranges:
    """Sorted, merged, surrogates removed."""
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return subtract(out, [_SURROGATES]) if any(lo <= 0xDFFF and hi >= 0xD800 for lo, hi in out) else out


def complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    start = 0
    for lo, hi in normalise(ranges):
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODEPOINT:
        out.append((start, MAX_CODEPOINT))
    return normalise(out)


def subtract(ranges: Ranges, removed: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in ranges:
        pieces = [(lo, hi)]
        for rlo, rhi in removed:
            nxt = []
            for plo, phi in pieces:
                if rhi < plo or rlo > phi:
                    nxt.append((plo, phi))
                    continue
                if plo < rlo:
                    nxt.append((plo, rlo - 1))
                if phi > rhi:
                    nxt.append((rhi + 1, phi))
            pieces = nxt
        out.extend(pieces)
    return out


def contains(ranges: Ranges, c: int) -> bool:
    return any(lo <= c <= hi for lo, hi in ranges)


def json_escape(text: str) -> str:
    """`text` as it appears inside a JSON string (what the grammar must produce for a literal)."""
    return orjson.dumps(text).decode()[1:-1]


_SHORT_ESCAPES = {0x08: "b", 0x09: "t", 0x0A: "n", 0x0C: "f", 0x0D: "r"}


def json_chars(ranges: Ranges) -> str:
    """A GBNF expression for one character of the set, as it appears inside a JSON string."""
    ranges = normalise(ranges)
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1] and 0x20 <= ranges[0][0] < 0x7F:
        return literal(json_escape(chr(ranges[0][0])))
    alternatives = []
    raw = subtract(ranges, [(0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C)])
    if raw:
        alternatives.append(char_class(raw))
    for c in (0x22, 0x5C):
        if contains(ranges, c):
            alternatives.append(literal("\\" + chr(c)))
    # Of the control characters only the short escapes are offered: a subset of the set, so still sound.
    alternatives += [literal("\\" + esc) for c, esc in _SHORT_ESCAPES.items() if contains(ranges, c)]
    if not alternatives:
        raise ValueError("empty character set")
    return alternatives[0] if len(alternatives) == 1 else "( " + " | ".join(alternatives) + " )"
