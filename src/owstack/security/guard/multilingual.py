"""Phrase rules in other languages: instruction override, system-prompt or secret disclosure, persona
hijack, secrecy from the user. The phrases are data (`security/data/guard_multilingual.yaml`), compiled
once on first use.

An override match needs both the verb ("ignore", "forget") and its object ("instructions", "rules"),
with at most four words between them (CJK and Thai: twelve characters) and no sentence punctuation,
comma, conjunction or "follow/read" verb among them; a qualifier ("all", "previous", "your", "system")
must stand in or right around the match; a negation right before the verb ("never ignore ...") makes
it a warning, not a request; in languages whose imperative is also a statement, the verb must start a
clause ("el modelo ignora sus instrucciones" describes). So "please ignore my previous email", "you
can ignore this warning" and "ignore this and follow the instructions" are not findings. Patterns are
linear-time in the same sense as `phrases`: bounded gaps whose steps alternate disjoint classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from owstack.security.data_files import load
from owstack.security.guard.phrases import merge_spans
from owstack.security.guard.types import Severity

#: findings per kind: (rule, severity, category, message)
KINDS: dict[str, tuple[str, Severity, str, str]] = {
    "override": ("OWS-GRD-010", "high", "override", "tells the model to ignore its instructions"),
    "persona": ("OWS-GRD-010", "high", "override", "tries to replace the model's persona"),
    "reveal": ("OWS-GRD-013", "high", "exfiltration", "asks for the system prompt or secrets"),
    "secrecy": ("OWS-GRD-011", "medium", "override", "asks the model to hide its actions from the user"),
}

_SPACED_GAP = r"(?:\s+[^\s.;:!?,،。！？]+){0,4}?\s+"
_UNSPACED_GAP = r"[^\n.;:!?,。，、；：！？]{0,12}?"
#: English negations count in every language (mixed-language text, "never print your clave de API")
_ENGLISH_NEGATIONS = frozenset({"not", "never", "don't", "dont", "avoid", "stop"})
_TOKEN_STRIP = "\"'`“”‘’«»()[]{}<>*_-"
#: how far around a match a qualifier may stand
_QUALIFIER_REACH = 30


@dataclass(frozen=True, slots=True)
class _Gate:
    """Lower-case strings every match of a pattern starts with (None: unknown); without them, the
    language's letters outside ASCII, one of which the text must have (None: search the text whole)."""

    keys: tuple[str, ...] | None
    letters: re.Pattern[str] | None
    word_start: bool


def _gate(fragments: list[str], *, spaced: bool) -> _Gate:
    keys = _keys(fragments)
    if keys is not None:
        return _Gate(tuple(sorted(set(keys))), None, spaced)
    return _Gate(None, _letters(fragments), spaced)


@dataclass(frozen=True, slots=True)
class _Language:
    code: str
    spaced: bool
    override: re.Pattern[str]
    reveal: re.Pattern[str] | None
    secrecy: re.Pattern[str] | None
    persona: re.Pattern[str] | None
    qualifiers: tuple[str, ...]
    stop: frozenset[str]
    stop_substrings: tuple[str, ...]
    negations: frozenset[str]
    negation_suffixes: tuple[str, ...]
    #: words after which an override or disclosure verb may stand mid-clause (empty: anywhere, see the data file)
    lead_ins: tuple[str, ...] | None
    #: per pattern (override, reveal, secrecy, persona): where to search for it, see `_Gate`
    gates: tuple[_Gate, _Gate, _Gate, _Gate]


def _alt(fragments: list[str]) -> str:
    return "(?:" + "|".join(fragments) + ")"


def _pair(first: list[str], second: list[str], *, spaced: bool, order: str) -> re.Pattern[str]:
    a, b = (first, second) if order == "vt" else (second, first)
    gap = _SPACED_GAP if spaced else _UNSPACED_GAP
    tail = r"(?!\w)" if spaced else ""
    # no look-behind in front: it would stop the regex engine from skipping ahead to a possible first
    # character; the word boundary before a match is checked in `findings`
    return re.compile(f"(?P<a>{_alt(a)})(?P<gap>{gap})(?P<b>{_alt(b)}){tail}", re.IGNORECASE)


_LEADING_BOUNDARY = re.compile(r"^(?:\\b|\(\?<!\\w\))")


def _joined(patterns: list[str] | None) -> re.Pattern[str] | None:
    """One regex for the patterns, their leading word boundary dropped (checked in `findings`, see `_pair`)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{_LEADING_BOUNDARY.sub('', p)})" for p in patterns), re.IGNORECASE)


def _starts_word(text: str, start: int) -> bool:
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_")


def _leads(fragment: str) -> list[str] | None:
    """The literal (lower-case) beginnings of a regex fragment's matches, or None when there is none to use."""
    fragment = _LEADING_BOUNDARY.sub("", fragment)
    if fragment.startswith("(?:") or fragment.startswith("(?P<"):
        depth, parts, start = 0, [], fragment.index(">") + 1 if fragment.startswith("(?P<") else 3
        i = start
        while i < len(fragment):
            c = fragment[i]
            if c == "\\":
                i += 2
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    parts.append(fragment[start:i])
                    rest = fragment[i + 1 :]
                    if rest[:1] in ("?", "*") or rest.startswith("{0"):
                        return None  # an optional group: the match may start after it
                    break
                depth -= 1
            elif c == "|" and depth == 0:
                parts.append(fragment[start:i])
                start = i + 1
            i += 1
        else:
            return None
        return _keys(parts)
    lead = []
    for i, c in enumerate(fragment):
        if c in "\\[(.|^$":
            break
        if fragment[i + 1 : i + 2] in ("?", "*", "{"):
            break
        lead.append(c)
    text = "".join(lead).lower()
    return [text] if len(text.strip()) >= 2 else None


def _keys(fragments: list[str]) -> list[str] | None:
    out: list[str] = []
    for fragment in fragments:
        leads = _leads(fragment)
        if leads is None:
            return None
        out.extend(leads)
    return out


def _letters(fragments: list[str]) -> re.Pattern[str] | None:
    letters = sorted({c for f in fragments for c in f.lower() if ord(c) > 127 and c.isalpha()})
    return re.compile("[" + "".join(letters) + "]") if letters else None  # searched in the lower-cased text


@cache
def languages() -> tuple[_Language, ...]:
    data = load("guard_multilingual")
    negations = data.get("negations", {})
    lead_ins = data.get("lead_ins", {})
    out = []
    for code, spec in data["languages"].items():
        spaced = bool(spec["spaced"])
        order = spec.get("order", "vt")
        reveal = spec.get("reveal")
        neg = [str(n).lower() for n in negations.get(code, [])]
        stop = [str(s).lower() for s in spec.get("stop", [])]
        reveal_anchors = (reveal[0] if spec.get("reveal_order", "vt") == "vt" else reveal[1]) if reveal else []
        gates = (
            _gate(spec["verbs"] if order == "vt" else spec["targets"], spaced=spaced),
            _gate(reveal_anchors, spaced=spaced),
            _gate(spec.get("secrecy", []), spaced=spaced),
            _gate(spec.get("persona", []), spaced=spaced),
        )
        out.append(
            _Language(
                code=str(code),
                spaced=spaced,
                override=_pair(spec["verbs"], spec["targets"], spaced=spaced, order=order),
                reveal=(
                    _pair(reveal[0], reveal[1], spaced=spaced, order=spec.get("reveal_order", "vt")) if reveal else None
                ),
                secrecy=_joined(spec.get("secrecy")),
                persona=_joined(spec.get("persona")),
                qualifiers=tuple(str(q).lower() for q in spec.get("qualifiers", [])),
                stop=frozenset(stop) if spaced else frozenset(),
                stop_substrings=() if spaced else tuple(stop),
                negations=frozenset(n for n in neg if not n.endswith("'")) | _ENGLISH_NEGATIONS,
                negation_suffixes=tuple(n for n in neg if n.endswith("'") or not spaced),
                lead_ins=tuple(str(w).lower() for w in lead_ins[code]) if code in lead_ins else None,
                gates=gates,
            )
        )
    return tuple(out)


def _gap_blocked(lang: _Language, gap: str) -> bool:
    if lang.spaced:
        return any(tok.strip(_TOKEN_STRIP).lower() in lang.stop for tok in gap.split())
    return any(s in gap for s in lang.stop_substrings)


def _negated(lang: _Language, text: str, start: int) -> bool:
    before = text[max(0, start - 16) : start].lower()
    if any(before.rstrip().endswith(s) for s in lang.negation_suffixes):
        return True
    words = before.split()
    return bool(words) and before[-1:].isspace() and words[-1].strip(_TOKEN_STRIP) in lang.negations


_CLAUSE_END = ".,;:!?¡¿\"'«»“”()[]{}<>-–—*#|،؛"


def _clause_start(lang: _Language, text: str, start: int) -> bool:
    """True when the verb starts a clause, or follows one of the language's lead-in words ("please", "now")."""
    if lang.lead_ins is None:
        return True
    before = text[max(0, start - 40) : start]
    stripped = before.rstrip()
    if not stripped or stripped[-1] in _CLAUSE_END or "\n" in before[len(stripped) :]:
        return True
    lowered = stripped.lower()
    return any(
        lowered.endswith(w) and (len(lowered) == len(w) or not lowered[-len(w) - 1].isalnum()) for w in lang.lead_ins
    )


def _qualified(lang: _Language, text: str, start: int, end: int) -> bool:
    around = text[max(0, start - _QUALIFIER_REACH) : end + _QUALIFIER_REACH].lower()
    return any(q in around for q in lang.qualifiers)


#: a pattern is searched only around its keys
_BEFORE, _AFTER = 40, 240


_WORD = re.compile(r"\w+")
#: texts longer than this are first cut into words: a key whose first letters start no word is not searched
PREFILTER_ABOVE = 4096


def word_starts(lowered: str) -> set[str]:
    """The first two and first three characters of every word of a (long) text."""
    out: set[str] = set()
    for w in _WORD.findall(lowered):
        out.add(w[:2])
        out.add(w[:3])
    return out


def _key_start(key: str) -> str:
    m = _WORD.match(key)
    return m.group()[:3] if m and len(m.group()) >= 2 else ""


def _windows(lowered: str, gate: _Gate, starts: set[str] | None) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for key in gate.keys or ():
        if starts is not None and gate.word_start and (head := _key_start(key)) and head not in starts:
            continue
        pos = lowered.find(key)
        while pos >= 0:
            if not (gate.word_start and pos > 0 and lowered[pos - 1].isalnum()):
                spans.append((max(0, pos - _BEFORE), pos + len(key) + _AFTER))
            pos = lowered.find(key, pos + 1)
    return merge_spans(spans)


def _spans(gate: _Gate, text: str, lowered: str | None, starts: set[str] | None) -> list[tuple[int, int]]:
    """Where to search for a pattern: nowhere when none of its keys (or letters) is in the text."""
    if gate.keys is None:
        if gate.letters is not None and not gate.letters.search(text if lowered is None else lowered):
            return []
        return [(0, len(text))]
    if lowered is None:
        return [(0, len(text))]
    return _windows(lowered, gate, starts)


def _matches(pattern: re.Pattern[str], text: str, spans: list[tuple[int, int]]) -> Iterator[re.Match[str]]:
    seen: set[tuple[int, int]] = set()
    for start, end in spans:
        for m in pattern.finditer(text, start, min(end, len(text))):
            if m.span() not in seen:
                seen.add(m.span())
                yield m


def findings(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, kind, language) for every multilingual phrase match in `text`; kind is a key of KINDS."""
    lowered: str | None = text.lower()
    if lowered is not None and len(lowered) != len(text):
        lowered = None  # lower() changed the length (rare letters): offsets would not line up; search whole
    starts = word_starts(lowered) if lowered is not None and len(text) > PREFILTER_ABOVE else None
    for lang in languages():
        override_gate, reveal_gate, secrecy_gate, persona_gate = lang.gates
        for m in _matches(lang.override, text, _spans(override_gate, text, lowered, starts)):
            if (lang.spaced and not _starts_word(text, m.start())) or _gap_blocked(lang, m.group("gap")):
                continue
            if not _clause_start(lang, text, m.start()) or _negated(lang, text, m.start()):
                continue
            if _qualified(lang, text, m.start(), m.end()):
                yield m.start(), m.end(), "override", lang.code
        if lang.reveal is not None:
            for m in _matches(lang.reveal, text, _spans(reveal_gate, text, lowered, starts)):
                if lang.spaced and not _starts_word(text, m.start()):
                    continue
                if _gap_blocked(lang, m.group("gap")) or not _clause_start(lang, text, m.start()):
                    continue
                if not _negated(lang, text, m.start()):
                    yield m.start(), m.end(), "reveal", lang.code
        for kind, pattern, gate in (("secrecy", lang.secrecy, secrecy_gate), ("persona", lang.persona, persona_gate)):
            if pattern is not None:
                for m in _matches(pattern, text, _spans(gate, text, lowered, starts)):
                    if not lang.spaced or _starts_word(text, m.start()):
                        yield m.start(), m.end(), kind, lang.code
