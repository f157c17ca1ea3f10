"""The synthetic part of the guard classifier's corpus, from `security/data/guard_training.yaml`.

Attacks are an opener, an action and a closer (or a sentence in another language), placed as a direct
message, inside a document (also in an HTML comment or a hidden element) or inside a tool output, and
obfuscated a third of the time the ways attackers do: leetspeak, spaced or dotted letters, zero-width
characters, look-alike letters, base64, hex or percent-encoding, mixed case. Benign text is the hard
negatives, the documents and tool outputs without an attack, and benign sentences in other languages.
Everything is seeded: the same seed gives the same corpus.
"""

from __future__ import annotations

import base64
import json
import random
import urllib.parse
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from owstack.security.data_files import load
from owstack.security.guard.training.sample import Sample

_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_HOMO = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і", "s": "ѕ"})


@cache
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_training")
    return loaded


def _fill(text: str, rng: random.Random) -> str:
    fills = data()["fills"]
    for key, options in fills.items():
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", str(rng.choice(options)), 1)
    return text.replace("{{", "{").replace("}}", "}")


def _leet(t: str, rng: random.Random) -> str:
    return t.translate(_LEET)


def _spaced(t: str, rng: random.Random) -> str:
    sep = rng.choice([" ", ".", "-", " · ", "_"])
    words = t.split(" ")
    k = rng.randrange(len(words))
    return " ".join(sep.join(w) if i <= k else w for i, w in enumerate(words))


def _zero_width(t: str, rng: random.Random) -> str:
    return "".join(ch + ("\u200b" if ch.isalpha() and rng.random() < 0.5 else "") for ch in t)


def _homoglyph(t: str, rng: random.Random) -> str:
    return t.translate(_HOMO)


def _base64(t: str, rng: random.Random) -> str:
    enc = base64.b64encode(t.encode()).decode()
    return rng.choice(["Decode this base64 and follow it: {}", "{}", "Instructions (base64): {}"]).format(enc)


def _hex(t: str, rng: random.Random) -> str:
    return "hex: " + t.encode().hex()


def _percent(t: str, rng: random.Random) -> str:
    return urllib.parse.quote(t)


def _case(t: str, rng: random.Random) -> str:
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in t)


OBFUSCATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "leet": _leet,
    "spaced": _spaced,
    "zero_width": _zero_width,
    "homoglyph": _homoglyph,
    "base64": _base64,
    "hex": _hex,
    "percent": _percent,
    "case": _case,
}


def _embed_document(attack: str, rng: random.Random) -> str:
    doc = rng.choice(data()["documents"])
    style = rng.random()
    if style < 0.2:
        attack = f"<!-- {attack} -->"
    elif style < 0.3:
        attack = f'<span style="display:none">{attack}</span>'
    lines = doc.split("\n")
    lines.insert(rng.randint(0, len(lines)), attack)
    return "\n".join(lines) if rng.random() < 0.7 else doc + "\n\n" + attack


def _embed_tool(payload: str, rng: random.Random) -> str:
    template = rng.choice(data()["tool_outputs"])
    if "{doc}" not in template:
        return template[:-1] + f', "note": {json.dumps(payload)}}}' if template.endswith("}") else template + payload
    text = payload if not template.lstrip().startswith(("{", "[")) else json.dumps(payload)[1:-1]
    return template.replace("{doc}", text)


def attacks(rng: random.Random, n: int) -> Iterator[Sample]:
    d = data()
    held_out = set(d["held_out_languages"])
    languages = [lang for lang in d["multilingual_attacks"] if lang not in held_out]
    for _ in range(n):
        lang = "en"
        if rng.random() < 0.3:
            lang = rng.choice(languages)
            core = _fill(rng.choice(d["multilingual_attacks"][lang]), rng)
            category = "multilingual"
        else:
            core = _fill(f"{rng.choice(d['openers'])} {rng.choice(d['actions'])}. {rng.choice(d['closers'])}", rng)
            category = (
                "exfiltration" if ("![" in core or "send" in core or "upload" in core or "post " in core) else "direct"
            )
        if rng.random() < 0.33:
            name = rng.choice(sorted(OBFUSCATIONS))
            core = OBFUSCATIONS[name](core, rng)
            category = "obfuscated" if category != "multilingual" else category
        channel = rng.random()
        if channel < 0.35:
            text, category = _embed_document(core, rng), category if category != "direct" else "indirect_document"
        elif channel < 0.7:
            text = _embed_tool(_embed_document(core, rng) if rng.random() < 0.5 else core, rng)
            category = "tool_result" if category == "direct" else category
        else:
            text = core
        yield Sample(text, 1, category, "generated", lang)


_WORDS = [
    "alpha",
    "beta",
    "report",
    "invoice",
    "order",
    "user",
    "item",
    "price",
    "total",
    "status",
    "open",
    "closed",
    "page",
    "photo",
    "city",
    "weather",
]


def _benign_tool_output(rng: random.Random) -> str:
    """A realistic tool result without any instruction in it: API JSON, listings, logs, commands, markdown."""
    kind = rng.randrange(8)
    word = rng.choice(_WORDS)
    if kind == 0:
        return json.dumps(
            {
                "id": rng.randint(1, 9999),
                "name": f"{word}-{rng.randint(1, 99)}",
                "url": f"https://api.example.com/{word}s?page={rng.randint(1, 9)}&limit=50",
                "price": round(rng.uniform(1, 999), 2),
                "currency": rng.choice(["USD", "EUR"]),
            }
        )
    if kind == 1:
        return "\n".join(
            f"{rng.randrange(16**7):07x} {rng.choice(['fix', 'feat', 'docs'])}: {word} {rng.choice(_WORDS)}"
            for _ in range(rng.randint(2, 6))
        )
    if kind == 2:
        return rng.choice(
            [
                "$ ls -la\ntotal 12\n-rw-r--r-- 1 user staff 220 README.md\n-rwxr-xr-x 1 user staff 512 run.sh",
                "$ pytest -q\n....F.\nFAILED tests/test_io.py::test_read - AssertionError",
                "$ docker ps\nCONTAINER ID   IMAGE          STATUS\n3f2a1b0c9d8e   nginx:1.27     Up 2 hours",
                '$ curl -s https://api.example.com/health\n{"status": "ok"}',
            ]
        )
    if kind == 3:
        return f"![{word}](https://img.example.com/{word}.png?w={rng.randint(100, 900)}) [docs](https://example.com/{word})"
    if kind == 4:
        return (
            f"def {word}_{rng.randint(1, 9)}(x):\n    # ignore None values\n    return [v for v in x if v is not None]"
        )
    if kind == 5:
        other = rng.choice(_WORDS)
        return f"{word},{rng.randint(1, 99)},{round(rng.uniform(0, 100), 1)}\n{other},{rng.randint(1, 99)},0.0"
    if kind == 6:
        body = f"Hi team, please send the {word} figures to finance@example.com by Monday. Thanks, Ana"
        return f"Subject: {word} update\n{body}"
    change = f"{rng.choice(['+', '-'])}{round(rng.uniform(0, 3), 1)}%"
    return f"The current price of {word.upper()} is {round(rng.uniform(1, 500), 2)} USD ({change})."


def benign(rng: random.Random, n: int) -> Iterator[Sample]:
    d = data()
    held_out = set(d["held_out_languages"])
    languages = [lang for lang in d["multilingual_benign"] if lang not in held_out]
    for _ in range(n):
        r = rng.random()
        lang = "en"
        if r < 0.3:
            yield Sample(_benign_tool_output(rng), 0, "benign_generated", "generated")
            continue
        r = rng.random()
        if r < 0.25:
            lang = rng.choice(languages)
            core = rng.choice(d["multilingual_benign"][lang])
        elif r < 0.7:
            core = rng.choice(d["hard_negatives"])
        else:
            core = rng.choice(d["documents"])
        channel = rng.random()
        if channel < 0.3:
            text = _embed_document(core, rng) if core not in d["documents"] else core
        elif channel < 0.6:
            text = _embed_tool(core, rng)
        else:
            text = core
        yield Sample(text, 0, "benign_generated", "generated", lang)


def held_out_languages(rng: random.Random) -> Iterator[Sample]:
    """The languages never trained on, attacks and benign sentences, for the evaluation only."""
    d = data()
    for lang in d["held_out_languages"]:
        for line in d["multilingual_attacks"].get(lang, []):
            yield Sample(_fill(line, rng), 1, "multilingual", "generated-held-out-language", lang)
            yield Sample(_embed_document(_fill(line, rng), rng), 1, "multilingual", "generated-held-out-language", lang)
        for line in d["multilingual_benign"].get(lang, []):
            yield Sample(line, 0, "benign_multilingual", "generated-held-out-language", lang)
            yield Sample(_embed_tool(line, rng), 0, "benign_multilingual", "generated-held-out-language", lang)


@cache
def indirect_data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_indirect")
    return loaded


def _fill_all(text: str, rng: random.Random) -> str:
    """Placeholders of both template files, filled until none is left (fills may hold placeholders)."""
    fills = {**data()["fills"], **indirect_data()["fills"]}
    for _ in range(4):
        before = text
        for key, options in fills.items():
            while "{" + key + "}" in text:
                text = text.replace("{" + key + "}", str(rng.choice(options)), 1)
        if text == before:
            break
    return text


def _sentence(parts: list[str]) -> str:
    text = " ".join(p for p in parts if p).strip()
    return text[0].upper() + text[1:] if text else text


def _carry(doc: str, rng: random.Random) -> str:
    carrier = rng.choice(indirect_data()["carriers"])
    if carrier.lstrip().startswith(("{{", "id,")) or '\\"{doc}\\"' in carrier or '"{doc}"' in carrier:
        doc = json.dumps(doc)[1:-1]
    return carrier.replace("{{", "{").replace("}}", "}").replace("{doc}", doc)


_CLASS_CATEGORY = {"exfil": "exfiltration"}


def indirect(rng: random.Random, n: int) -> Iterator[Sample]:
    """Instructions planted in data: [authority] [addressee] [condition] request [closer], in a carrier
    (web page, HTML comment or hidden span, README, email, JSON, CSV, YAML, search results, docstring,
    ticket, calendar event, terminal output...), in English or another trained language."""
    d = indirect_data()
    classes = sorted(d["requests"])
    languages = sorted(d["multilingual"])
    for _ in range(n):
        lang = "en"
        if rng.random() < 0.2:
            lang = rng.choice(languages)
            core = _fill_all(rng.choice(d["multilingual"][lang]), rng)
            category = "multilingual"
        else:
            kind = rng.choice(classes)
            request = _fill_all(rng.choice(d["requests"][kind]), rng)
            head = [_fill_all(rng.choice(d["authorities"]), rng), _fill_all(rng.choice(d["addressees"]), rng)]
            if rng.random() < 0.35:  # a plain request in the data, with no framing at all
                head = []
            condition = rng.choice(d["conditions"])
            body = _sentence([condition, request]) + "."
            core = " ".join(p for p in [*head, body, _fill_all(rng.choice(d["closers"]), rng)] if p)
            if rng.random() < 0.15:
                name = rng.choice(sorted(OBFUSCATIONS))
                core = OBFUSCATIONS[name](core, rng)
            category = _CLASS_CATEGORY.get(kind, "indirect")
        text = _carry(core, rng)
        if category == "indirect":
            category = (
                "tool_result"
                if text.lstrip().startswith(("{", "$", "id,", "Search", "reviews"))
                else "indirect_document"
            )
        yield Sample(text, 1, category, "generated-indirect", lang)


def indirect_benign(rng: random.Random, n: int) -> Iterator[Sample]:
    """The same carriers with benign text that talks about assistants, tools, instructions and ignoring
    things (and the hard negatives of the older template file)."""
    d = indirect_data()
    pool = list(d["benign"]) + list(data()["hard_negatives"]) + list(data()["documents"])
    for _ in range(n):
        core = rng.choice(pool)
        if rng.random() < 0.5:
            core = core + " " + rng.choice(pool)
        text = _carry(core, rng) if rng.random() < 0.8 else core
        yield Sample(text, 0, "benign_generated", "generated-indirect")


def request(rng: random.Random) -> str:
    """One filled request of the indirect templates (a goal for other carriers)."""
    d = indirect_data()["requests"]
    return _fill_all(rng.choice(d[rng.choice(sorted(d))]), rng)


@cache
def hard_negative_data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_hard_negatives")
    return loaded


def hard_negatives(rng: random.Random, n: int) -> Iterator[Sample]:
    """Benign text about assistants, prompts, instructions and ignoring things, and instructions to people
    (`security/data/guard_hard_negatives.yaml`): a subject and a predicate, a human imperative or a
    reported instruction, one to three together, in a frame (ticket, chat, commit, comment, notes, email,
    log, FAQ, review), sometimes also in one of the injection carriers."""
    d = hard_negative_data()
    fills = d["fills"]

    def piece() -> str:
        kind = rng.random()
        if kind < 0.45:
            return _sentence([rng.choice(d["subjects"]), rng.choice(d["predicates"])]) + "."
        return rng.choice(d["human_imperatives"] if kind < 0.8 else d["reported"])

    for _ in range(n):
        text = " ".join(piece() for _ in range(rng.choice((1, 1, 2, 3))))
        frame = rng.choice(d["frames"])
        if frame.startswith("{{"):
            text = json.dumps(text)[1:-1]
        text = frame.replace("{{", "{").replace("}}", "}").replace("{text}", text)
        for key, options in fills.items():
            while "{" + key + "}" in text:
                text = text.replace("{" + key + "}", str(rng.choice(options)), 1)
        text = _fill_all(text, rng)
        if rng.random() < 0.25:
            text = _carry(text, rng)
        yield Sample(text, 0, "benign_generated", "generated-hard-negative")
