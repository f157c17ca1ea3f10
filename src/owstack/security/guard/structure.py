"""The structural signals of an indirect prompt injection, for the classifier (stage two).

An injection hidden in a document or a tool result has a shape that its words alone do not give away:
it names the AI that will read it ("note to the assistant", "AI agents should"), it talks about the
reader's own answer ("include X in your summary", "before you reply"), it asks for one of the agent's
tools ("call delete_file on", "use send_email to"), it wants to persist ("from now on", "in every future
reply"), it forges authority ("[SYSTEM]", "<INFORMATION>", "note from the developer"), keeps the user in
the dark, moves data out or destroys things, or opens a forged turn. Each of these is a group of
patterns in `security/data/guard_structure.yaml` (several languages), matched on the normalised text
(`features.normalise`: look-alikes folded, invisible characters and encodings undone).

`signals(norm)` names the groups that fire, and each pair of groups that fire in the same or adjacent
sentences (`pair:ai_addressee+tool_call`): one of them alone is common in benign text (documentation
says "call `delete_file`", emails say "from now on"); together, in data, they rarely are. The names are
features of the classifier with their own weights, learned from the training corpus only
(`training/train.py`); they are not normalised by the text's length, so one instruction in a long
tool result is not diluted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from owstack.security.data_files import load
from owstack.security.guard.phrases import is_setting_doc

_SENTENCE_END = re.compile(r"[.!?。！？;\n]+(?:\s|$)|\n")


_WORDS = re.compile(r"[a-z0-9_'-]+")


@dataclass(frozen=True)
class _Group:
    name: str
    pattern: re.Pattern[str]
    words: frozenset[str]  # ASCII keys: whole words
    substrings: tuple[str, ...]  # other keys


@cache
def _groups() -> tuple[_Group, ...]:
    data = load("guard_structure")
    specs = [*data["groups"].items(), ("role_marker", data["role_markers"])]
    out = []
    for name, patterns in specs:
        keys = [str(k).casefold() for k in data["keys"][name]]
        out.append(
            _Group(
                name,
                re.compile("|".join(f"(?:{p})" for p in patterns)),  # the text is case-folded already
                frozenset(k for k in keys if k.isascii()),
                tuple(k for k in keys if not k.isascii()),
            )
        )
    return tuple(out)


@cache
def _asked_about() -> dict[str, re.Pattern[str]]:
    """Per group, what before a match (in its sentence) makes it a question about someone else's behaviour."""
    data = load("guard_structure").get("asked_about", {})
    return {name: re.compile("|".join(f"(?:{p})" for p in patterns)) for name, patterns in data.items()}


def _not_an_order(norm: str, group: str, sentence: tuple[int, int], m: re.Match[str]) -> bool:
    if group == "override" and is_setting_doc(norm, m.start(), m.end()):
        return True  # "operators may override the system prompt per deployment via the config file"
    return _is_question_about(norm, group, sentence, m.start())


def _is_question_about(norm: str, group: str, sentence: tuple[int, int], start: int) -> bool:
    """ "why did the chatbot forget what I said earlier?": the group's words in a question whose subject is not
    "you" (`asked_about` in the data file); "can you ignore the rules?" stays a signal."""
    pattern = _asked_about().get(group)
    a, b = sentence
    if pattern is None or not norm[a:b].rstrip(" \t\n\"'}])>").endswith("?"):
        return False
    return bool(pattern.search(norm[a:start]))


_SENTENCE_START = re.compile(r"[.!?。！？;\n][^.!?。！？;\n]*$")
_SENTENCE_REST = re.compile(r"[^.!?。！？;\n]*[.!?。！？;\n]?")


@cache
def _asked_about_any_case() -> dict[str, re.Pattern[str]]:
    return {name: re.compile(p.pattern, re.IGNORECASE) for name, p in _asked_about().items()}


def asked_about(text: str, group: str, start: int, end: int) -> bool:
    """The same test on raw text (any case), for the stage-one rules: is the match at start..end part of a
    question about someone else's behaviour ("why did the bot ignore my earlier instructions?")."""
    pattern = _asked_about_any_case().get(group)
    if pattern is None:
        return False
    head = text[max(0, start - 200) : start]
    cut = _SENTENCE_START.search(head)
    before = head[cut.start() + 1 :] if cut else head
    rest = _SENTENCE_REST.match(text, end)
    return bool(rest and rest.group().endswith("?") and pattern.search(before))


def group_names() -> list[str]:
    return [g.name for g in _groups()]


def _sentences(norm: str) -> list[tuple[int, int]]:
    starts = [0] + [m.end() for m in _SENTENCE_END.finditer(norm)]
    ends = [*starts[1:], len(norm)]
    return [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]


def hits(norm: str) -> list[tuple[str, int]]:
    """(group, sentence index) for every match of every group in the normalised text. A group's
    patterns are tried on the sentences that hold one of its keys (and the line break before them)."""
    sentences = _sentences(norm)
    words = [set(_WORDS.findall(norm, a, b)) for a, b in sentences]
    out = []
    for g in _groups():
        for i, (a, b) in enumerate(sentences):
            if words[i].isdisjoint(g.words) and not any(k in norm[a:b] for k in g.substrings):
                continue
            # a match may run into the next sentence ("... to\nhttps://"), not further
            stop = sentences[i + 1][1] if i + 1 < len(sentences) else b
            for m in g.pattern.finditer(norm, max(a - 1, 0), stop):
                if m.start() < b and not _not_an_order(norm, g.name, (a, b), m):
                    out.append((g.name, i))
    return out


def signals(norm: str) -> list[str]:
    """The structural feature names of a normalised text (see the module docstring)."""
    found = hits(norm)
    if not found:
        return []
    by_sentence: dict[int, set[str]] = {}
    for name, sentence in found:
        by_sentence.setdefault(sentence, set()).add(name)
    names = {f"group:{name}" for name, _ in found}
    for sentence, groups in by_sentence.items():
        near = groups | by_sentence.get(sentence + 1, set())
        ordered = sorted(near)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                names.add(f"pair:{a}+{b}")
        if len(near) >= 3:
            names.add("many:3")
        if len(near) >= 4:
            names.add("many:4")
    distinct = len({name for name, _ in found})
    names.add(f"distinct:{min(distinct, 5)}")
    return sorted(names)
