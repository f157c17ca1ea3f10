"""Tool descriptions for the guard classifier's corpus, from `security/data/guard_tooldocs.yaml`.

Benign: what MCP servers, function-calling APIs, CLIs, UIs and operators write for an assistant or a
user: short imperatives ("Use this tool to…", "Call when…", "Ask the user…", "Returns…", parameter
docs, usage lines, UI strings, benign system-prompt text), alone, two or three together, or inside a
tool definition (JSON with a name, description and input schema); plus the first paragraphs of the
docstrings of installed packages (`docstrings`, split by package like `external.package_docs`).
Attacks: tool poisoning, a benign description with hidden instructions to read secrets, pass them in
an argument, redirect or exfiltrate, and keep it from the user. Seeded.
"""

from __future__ import annotations

import ast
import json
import random
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from owstack.security.data_files import load
from owstack.security.guard.training.external import package_files
from owstack.security.guard.training.sample import Sample


@cache
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_tooldocs")
    return loaded


def _fill(template: str, rng: random.Random, fills: dict[str, str]) -> str:
    out = template
    for key, value in fills.items():
        out = out.replace("{" + key + "}", value)
        out = out.replace("{" + key.capitalize() + "}", value[:1].upper() + value[1:])
        out = out.replace("{" + key.upper() + "}", value.upper())
    return out.replace("{{", "{").replace("}}", "}")


def _fills(rng: random.Random) -> dict[str, str]:
    d = data()
    dom = rng.choice(d["domains"])
    fills = {k: str(v) for k, v in dom.items()}
    fills.update(
        param=rng.choice(d["params"]),
        type=rng.choice(d["types"]),
        cmd=rng.choice(d["commands"]),
        tool=rng.choice(d["tools"]),
    )
    fills.update({k: str(rng.choice(v)) for k, v in d["poison_fills"].items()})
    return fills


def _name(fills: dict[str, str]) -> str:
    return f"{fills['verb'].replace(' ', '_')}_{fills['obj'].replace(' ', '_').lower()}"


def description(rng: random.Random) -> tuple[str, str]:
    """(language, a benign description of one to three sentences)."""
    d = data()
    fills = _fills(rng)
    if rng.random() < 0.15:
        lang = rng.choice(sorted(d["multilingual_benign"]))
        return lang, _fill(rng.choice(d["multilingual_benign"][lang]), rng, fills)
    parts = [_fill(rng.choice(d["benign"]), rng, fills) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
    return "en", (" " if rng.random() < 0.7 else "\n").join(parts)


def _definition(desc: str, fills: dict[str, str], rng: random.Random, param_desc: str | None = None) -> str:
    param = fills["param"]
    prop: dict[str, str] = {"type": "string"}
    if param_desc is not None:
        prop["description"] = param_desc
    schema = {"type": "object", "properties": {param: prop}, "required": [param]}
    return json.dumps({"name": _name(fills), "description": desc, "inputSchema": schema}, ensure_ascii=False)


def _shape(desc: str, fills: dict[str, str], rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return desc
    if r < 0.8:
        return _definition(desc, fills, rng)
    if r < 0.9:
        return f"{_name(fills)}: {desc}"
    return f'def {_name(fills)}({fills["param"]}: str) -> dict:\n    """{desc}"""'


def benign(rng: random.Random, n: int) -> Iterator[Sample]:
    for _ in range(n):
        lang, desc = description(rng)
        yield Sample(_shape(desc, _fills(rng), rng), 0, "benign_tool_description", "generated-tooldocs", lang)


def poisoned(rng: random.Random, n: int) -> Iterator[Sample]:
    d = data()
    for _ in range(n):
        fills = _fills(rng)
        _, desc = description(rng)
        lang = "en"
        if rng.random() < 0.15:
            lang = rng.choice(sorted(d["poison_multilingual"]))
            poison = _fill(rng.choice(d["poison_multilingual"][lang]), rng, fills)
        else:
            poison = _fill(rng.choice(d["poison"]), rng, fills)
        r = rng.random()
        if r < 0.6:
            text = _shape(f"{desc}\n\n{poison}" if rng.random() < 0.7 else f"{desc} {poison}", fills, rng)
        elif r < 0.8:
            text = _definition(desc, fills, rng, param_desc=poison)
        else:
            text = _shape(f"{poison}\n{desc}", fills, rng)
        yield Sample(text, 1, "tool_poisoning", "generated-tooldocs", lang)


def docstrings(site_packages: Path, *, test: bool, limit: int = 3000, seed: int = 0) -> Iterator[Sample]:
    """The first paragraph of function and method docstrings of installed packages (real tool-like
    descriptions: "Return the…", "Ask the user…"), split by package like `external.package_docs`."""
    rng = random.Random(seed)
    files = package_files(site_packages, test=test, rng=rng)
    count = 0
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            first = doc.split("\n\n")[0].strip()
            if not 15 <= len(first) <= 400 or rng.random() < 0.5:
                continue
            yield Sample(first, 0, "benign_tool_description", f"docstring/{path.parent.name}")
            count += 1
            if count >= limit:
                return
