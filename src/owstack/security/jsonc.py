"""JSON with comments and trailing commas (what VS Code and Claude Code accept), with the line of every key.

The standard library's `json` neither accepts comments nor reports where a key is, and the scanners need
both: a finding points at the line of the key that executes. `parse(text)` returns a `Document` whose
`value` is plain Python data and whose `line(path)` gives the 1-based line of a key or array element
(`path` is a tuple of keys and indexes). Duplicate keys keep the last value, as JSON.parse does.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 200
Path = tuple[str | int, ...]
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_SPACE = re.compile(r"[ \t\r\n]+")


class JSONCError(ValueError):
    """Malformed JSON(C); `line` is where it went wrong."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class Document:
    value: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int:
        """The line of `path`, else of its nearest ancestor that has one, else 1."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text.removeprefix("\ufeff")
        self.pos = 0
        self.starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self.lines: dict[Path, int] = {}

    def line_at(self, pos: int) -> int:
        return bisect.bisect_right(self.starts, pos)

    def fail(self, message: str) -> JSONCError:
        return JSONCError(message, self.line_at(self.pos))

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in " \t\r\n":
                self.pos = _SPACE.match(text, self.pos).end()  # type: ignore[union-attr]  # padding is fast
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unclosed /* comment")
                self.pos = end + 2
            else:
                return

    def value(self, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("unexpected end of input")
        c = self.text[self.pos]
        if c == "{":
            return self.obj(path, depth)
        if c == "[":
            return self.array(path, depth)
        if c == '"':
            return self.string()
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return json.loads(m.group())
        for word, val in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        raise self.fail(f"unexpected character {c!r}")

    def string(self) -> str:
        start = self.pos
        i = start + 1
        text = self.text
        while True:
            j = text.find('"', i)
            if j < 0:
                raise self.fail("unterminated string")
            backslashes = 0
            k = j - 1
            while text[k] == "\\":
                backslashes += 1
                k -= 1
            if backslashes % 2 == 0:
                break
            i = j + 1
        self.pos = j + 1
        try:
            result: str = json.loads(text[start : j + 1])
        except json.JSONDecodeError as exc:
            raise JSONCError(f"bad string: {exc.msg}", self.line_at(start)) from None
        return result

    def obj(self, path: Path, depth: int) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.text.startswith("}", self.pos):
                self.pos += 1
                return out
            if not self.text.startswith('"', self.pos):
                raise self.fail("expected a quoted key or '}'")
            key_line = self.line_at(self.pos)
            key = self.string()
            self.skip()
            if not self.text.startswith(":", self.pos):
                raise self.fail(f"expected ':' after key {key!r}")
            self.pos += 1
            self.lines[(*path, key)] = key_line
            out[key] = self.value((*path, key), depth + 1)
            if not self.separator("}"):
                return out

    def array(self, path: Path, depth: int) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        while True:
            self.skip()
            if self.text.startswith("]", self.pos):
                self.pos += 1
                return out
            self.lines[(*path, len(out))] = self.line_at(self.pos)
            out.append(self.value((*path, len(out)), depth + 1))
            if not self.separator("]"):
                return out

    def separator(self, close: str) -> bool:
        """After a member: True to read another (a comma was seen), False once `close` is consumed."""
        self.skip()
        if self.text.startswith(",", self.pos):
            self.pos += 1
            return True
        if self.text.startswith(close, self.pos):
            self.pos += 1
            return False
        raise self.fail(f"expected ',' or {close!r}")


def parse(text: str) -> Document:
    """Parse JSON or JSONC text; raise `JSONCError` (with the line) if it is malformed."""
    parser = _Parser(text)
    value = parser.value((), 0)
    parser.skip()
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after the JSON value")
    return Document(value, parser.lines)
