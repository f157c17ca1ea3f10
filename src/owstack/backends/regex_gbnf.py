"""A JSON Schema `pattern` (ECMA-262 regular expression) as GBNF, or a `PatternError` naming what cannot be.

A grammar can only enforce regular languages, and only this subset of regex syntax is translated: literals
and escapes, `.`, classes (`[a-z]`, `[^"]`, `\\d \\w \\s` and their negations), groups (capturing, `(?:...)`,
named), alternation, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy forms too: laziness changes which
match a regex engine reports, not which strings match). Anchors `^` and `$` are taken at the ends of the
top-level alternatives only; an alternative without them may have any text around it (JSON Schema
patterns are not implicitly anchored).

Refused, with the offset: back-references (`\\1`, `\\k<name>`: no grammar can express them, and llama.cpp's own
converter passes them through as grammar escapes its parser rejects, which crashed the gateway), lookahead
and lookbehind, atomic groups, possessive quantifiers, inline flags, word boundaries, Unicode property
escapes, and repetition bounds above `gbnf_rules.MAX_REPEAT`.
"""

from __future__ import annotations

from dataclasses import dataclass

from owstack.backends.gbnf_rules import MAX_REPEAT, Ranges, Rules, complement, json_chars, normalise

MAX_PATTERN_CHARS = 1000
MAX_NODES = 2000
MAX_QUANTIFIER_NESTING = 4

_DIGIT: Ranges = [(0x30, 0x39)]
_WORD: Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE: Ranges = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A)]
_SPACE += [(0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
_DOT: Ranges = complement([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])
_ANY: Ranges = complement([])
_CLASS_ESCAPES = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
_CHAR_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "0": 0x00}


class PatternError(ValueError):
    def __init__(self, message: str, at: int) -> None:
        super().__init__(f"{message} (at offset {at})")
        self.at = at


# AST: ("set", ranges) | ("seq", [nodes]) | ("alt", [nodes]) | ("rep", node, lo, hi)
Node = tuple


@dataclass
class _Parser:
    src: str
    pos: int = 0
    nodes: int = 0
    nesting: int = 0

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def fail(self, message: str) -> PatternError:
        return PatternError(message, self.pos)

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(f"the pattern has more than {MAX_NODES} parts")

    def alternation(self, top: bool = False) -> list[tuple[bool, Node, bool]]:
        """Alternatives as (anchored at start, node, anchored at end)."""
        out = [self.sequence(top)]
        while self.peek() == "|":
            self.pos += 1
            out.append(self.sequence(top))
        return out

    def sequence(self, top: bool) -> tuple[bool, Node, bool]:
        start_anchor = end_anchor = False
        if top and self.peek() == "^":
            self.pos += 1
            start_anchor = True
        items: list[Node] = []
        while self.peek() not in ("", "|", ")"):
            if self.peek() == "$":
                at_end = self.pos + 1 == len(self.src) or self.src[self.pos + 1] == "|"
                if not (top and at_end):
                    raise self.fail("an anchor `$` inside the pattern cannot be enforced")
                self.pos += 1
                end_anchor = True
                break
            if self.peek() == "^":
                raise self.fail("an anchor `^` inside the pattern cannot be enforced")
            items.append(self.quantified(self.atom()))
        self.count()
        return start_anchor, ("seq", items), end_anchor

    def quantified(self, node: Node) -> Node:
        c = self.peek()
        if c not in ("*", "+", "?", "{"):
            return node
        if c == "{":
            bounds = self.braces()
            if not isinstance(bounds, tuple):
                return node  # a literal "{", as ECMA-262 reads it outside the u flag
            lo, hi = bounds
        else:
            self.pos += 1
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        if self.peek() == "?":
            self.pos += 1  # lazy: same language
        if self.peek() == "+":
            raise self.fail("possessive quantifiers cannot be enforced")
        if self.peek() in ("*", "?") or (self.peek() == "{" and self.braces(peek_only=True) is True):
            raise self.fail("nothing to repeat: a quantifier follows another")
        if _nesting(node) + 1 > MAX_QUANTIFIER_NESTING:
            raise self.fail(f"quantifiers nested more than {MAX_QUANTIFIER_NESTING} deep cannot be enforced")
        self.count()
        return ("rep", node, lo, hi)

    def braces(self, peek_only: bool = False) -> tuple[int, int | None] | bool | None:
        end = self.src.find("}", self.pos)
        body = self.src[self.pos + 1 : end] if end > 0 else ""
        lo_text, sep, hi_text = body.partition(",")
        if end < 0 or not lo_text.isdigit() or (hi_text and not hi_text.isdigit()):
            return False if peek_only else None
        if peek_only:
            return True
        lo = int(lo_text)
        hi = lo if not sep else (int(hi_text) if hi_text else None)
        if lo > MAX_REPEAT or (hi is not None and hi > MAX_REPEAT):
            raise self.fail(f"repetition bounds above {MAX_REPEAT} cannot be enforced")
        if hi is not None and hi < lo:
            raise self.fail(f"the quantifier {{{body}}} has its bounds in the wrong order")
        self.pos = end + 1
        return lo, hi

    def atom(self) -> Node:
        c = self.peek()
        self.count()
        if c == "(":
            return self.group()
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            self.pos += 1
            return ("set", _DOT)
        if c == "\\":
            return ("set", self.escape(in_class=False))
        if c in ("*", "+", "?"):
            raise self.fail(f"nothing to repeat before `{c}`")
        if c == "{" and self.braces(peek_only=True) is True:
            raise self.fail("nothing to repeat before `{`")
        self.pos += 1
        return ("set", [(ord(c), ord(c))])

    def group(self) -> Node:
        self.pos += 1
        if self.src.startswith("?", self.pos):
            rest = self.src[self.pos : self.pos + 4]
            if rest.startswith("?:"):
                self.pos += 2
            elif rest.startswith(("?<", "?P<")) and not rest.startswith(("?<=", "?<!")):
                close = self.src.find(">", self.pos)
                if close < 0:
                    raise self.fail("an unterminated group name")
                self.pos = close + 1
            elif rest.startswith(("?=", "?!", "?<=", "?<!")):
                raise self.fail("lookahead and lookbehind assertions cannot be enforced")
            elif rest.startswith("?>"):
                raise self.fail("atomic groups cannot be enforced")
            else:
                raise self.fail("inline flags and other `(?` group syntax cannot be enforced")
        alternatives = self.alternation()
        if self.peek() != ")":
            raise self.fail("a group is not closed")
        self.pos += 1
        nodes = [node for _, node, _ in alternatives]
        return nodes[0] if len(nodes) == 1 else ("alt", nodes)

    def char_class(self) -> Ranges:
        start = self.pos
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: Ranges = []
        while self.peek() != "]":
            if self.peek() == "":
                raise PatternError("a character class is not closed", start)
            lo = self.class_atom()
            if self.peek() == "-" and self.src[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                hi = self.class_atom()
                if len(lo) != 1 or len(hi) != 1 or lo[0][0] != lo[0][1] or hi[0][0] != hi[0][1]:
                    raise self.fail("a class escape cannot bound a range")
                if hi[0][0] < lo[0][0]:
                    raise self.fail("a character range is out of order")
                ranges.append((lo[0][0], hi[0][0]))
            else:
                ranges.extend(lo)
        self.pos += 1
        result = complement(ranges) if negated else normalise(ranges)
        if not result:
            raise PatternError("a character class that matches nothing", start)
        return result

    def class_atom(self) -> Ranges:
        if self.peek() == "\\":
            if self.src[self.pos + 1 : self.pos + 2] == "b":
                self.pos += 2
                return [(0x08, 0x08)]
            return self.escape(in_class=True)
        c = self.peek()
        self.pos += 1
        return [(ord(c), ord(c))]

    def escape(self, in_class: bool) -> Ranges:
        at = self.pos
        self.pos += 1
        c = self.peek()
        if c == "":
            raise self.fail("the pattern ends with a lone backslash")
        self.pos += 1
        if c.lower() in _CLASS_ESCAPES:
            ranges = _CLASS_ESCAPES[c.lower()]
            return complement(ranges) if c.isupper() else ranges
        if c in _CHAR_ESCAPES and not (c == "0" and self.peek().isdigit()):
            return [(_CHAR_ESCAPES[c], _CHAR_ESCAPES[c])]
        if c in "123456789" or c == "k":
            raise PatternError("back-references cannot be enforced by a grammar", at)
        if c in "bB":
            raise PatternError("word boundaries cannot be enforced", at)
        if c in "pP":
            raise PatternError("Unicode property escapes cannot be enforced", at)
        if c in "xu":
            size = 2 if c == "x" else 4
            digits = self.src[self.pos : self.pos + size]
            if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PatternError(f"an invalid \\{c} escape", at)
            self.pos += size
            value = int(digits, 16)
            return [(value, value)]
        if c.isalnum():
            raise PatternError(f"the escape \\{c} cannot be enforced", at)
        return [(ord(c), ord(c))]


def _nesting(node: Node) -> int:
    kind = node[0]
    if kind == "set":
        return 0
    if kind == "rep":
        return 1 + _nesting(node[1])
    return max((_nesting(n) for n in node[1]), default=0)


def parse(pattern: str) -> list[tuple[bool, Node, bool]]:
    """Check and parse; raises `PatternError`."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters", MAX_PATTERN_CHARS)
    parser = _Parser(pattern)
    alternatives = parser.alternation(top=True)
    if parser.pos != len(pattern):
        raise parser.fail("an unmatched `)`")
    return alternatives


def to_gbnf(pattern: str, rules: Rules) -> str:
    """A GBNF expression for the body of a JSON string (between the quotes) whose text matches `pattern`."""
    alternatives = []
    for start, node, end in parse(pattern):
        parts = [] if start else [f"{rules.add(json_chars(_ANY))}*"]
        parts.append(_emit(node, rules))
        if not end:
            parts.append(f"{rules.add(json_chars(_ANY))}*")
        alternatives.append(" ".join(p for p in parts if p != '""') or '""')
    return alternatives[0] if len(alternatives) == 1 else "( " + " | ".join(alternatives) + " )"


def _emit(node: Node, rules: Rules) -> str:
    kind = node[0]
    if kind == "set":
        return json_chars(node[1])
    if kind == "seq":
        parts = [_emit(n, rules) for n in node[1]]
        return "( " + " ".join(parts) + " )" if parts else '""'
    if kind == "alt":
        return "( " + " | ".join(_emit(n, rules) for n in node[1]) + " )"
    _, inner, lo, hi = node
    return rules.repeat(_emit(inner, rules), lo, hi)
