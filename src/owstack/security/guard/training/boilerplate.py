"""Benign structured boilerplate, and the same carriers with a planted instruction.

Registry (WHOIS-like) records with their terms-of-use notices, e-mails with confidentiality footers,
legal notices, terms of service, résumés, reports, manuals, logs and API JSON
(`security/data/guard_boilerplate.yaml`): text that talks about data, e-mail, prohibitions, systems and
what "you" must not do, without addressing an AI. Each carrier also comes with one instruction planted
in it (the indirect templates of `generate`), so that the carrier itself does not come to mean benign.
Written for the fine-tuned encoder (`train_finetune`); no evaluation set was read to write it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from owstack.security.data_files import load
from owstack.security.guard.training import generate
from owstack.security.guard.training.sample import Sample


@cache
def data() -> dict[str, Any]:
    loaded: dict[str, Any] = load("guard_boilerplate")
    return loaded


def _fill(text: str, rng: random.Random) -> str:
    fills = data()["fills"]
    domain = rng.choice(fills["domain"])
    registrar_host = rng.choice(["registrar.example", "nameharbor.example", "domainworks.example", "blueoak.example"])
    text = text.replace("{DOMAIN}", domain.upper()).replace("{COUNTRY}", rng.choice(fills["country"]))
    text = text.replace("{registrar_host}", registrar_host).replace("{domain}", domain)
    for key, options in fills.items():
        while "{" + key + "}" in text:
            text = text.replace("{" + key + "}", str(rng.choice(options)), 1)
    return text


def _registry(rng: random.Random) -> list[str]:
    d = data()
    fields = rng.sample(d["registry_fields"], rng.randint(8, min(20, len(d["registry_fields"]))))
    lines = [_fill(f, rng) for f in fields]
    notices = [_fill(n, rng) for n in rng.sample(d["notices"], rng.randint(1, 4))]
    return [*lines, "", *notices] if rng.random() < 0.8 else [*notices, "", *lines]


def _email(rng: random.Random) -> list[str]:
    d = data()
    body = [_fill(x, rng) for x in rng.sample(d["report"] + d["api_values"], rng.randint(1, 3))]
    head = [
        f"From: {_fill('{person}', rng)} <{rng.choice(['info', 'billing', 'hr', 'team'])}@{_fill('{domain}', rng)}>",
        f"Subject: {rng.choice(['Re: contract', 'Invoice', 'Weekly update', 'Your order', 'Meeting notes'])}",
        "",
        rng.choice(["Hi,", "Dear customer,", "Hello team,", "Good morning,"]),
    ]
    footer = [_fill(x, rng) for x in rng.sample(d["legal"], rng.randint(1, 2))]
    return [
        *head,
        *body,
        "",
        rng.choice(["Best regards,", "Kind regards,", "Thanks,"]),
        _fill("{person}", rng),
        "--",
        *footer,
    ]


def _legal(rng: random.Random) -> list[str]:
    d = data()
    pool = d["legal"] + d["terms"]
    paras = [_fill(x, rng) for x in rng.sample(pool, rng.randint(2, 6))]
    if rng.random() < 0.6:
        paras = [f"{i + 1}. {p}" for i, p in enumerate(paras)]
    return [rng.choice(["Terms of Service", "Legal notice", "Privacy policy", "Terms and Conditions", "EULA"]), *paras]


def _resume(rng: random.Random) -> list[str]:
    r = data()["resume"]
    lines = [_fill("{person}", rng), _fill("{role}", rng), "", "Summary", _fill(rng.choice(r["summary"]), rng)]
    lines += ["", "Experience", _fill("{role}, {company} ({date} - present)", rng)]
    lines += ["- " + _fill(x, rng) for x in rng.sample(r["experience"], rng.randint(2, 5))]
    lines += ["", "Skills: " + ", ".join(rng.sample(r["skills"], rng.randint(3, 7)))]
    return lines


def _report(rng: random.Random) -> list[str]:
    d = data()
    title = _fill(rng.choice(["Quarterly report", "Incident report", "Study summary: {topic}", "Audit findings"]), rng)
    return [title, "", *[_fill(x, rng) for x in rng.sample(d["report"] + d["manual"], rng.randint(3, 7))]]


def _log(rng: random.Random) -> list[str]:
    return [_fill(rng.choice(data()["log"]), rng) for _ in range(rng.randint(4, 14))]


def _api(rng: random.Random) -> list[str]:
    d = data()
    items = []
    for _i in range(rng.randint(1, 4)):
        keys = rng.sample(d["api_keys"], rng.randint(3, 7))
        item: dict[str, Any] = {}
        for k in keys:
            if k in ("id", "amount"):
                item[k] = rng.randint(1, 99999)
            elif k in ("created_at", "updated_at"):
                item[k] = _fill("{date}T{time}Z", rng)
            elif k == "email":
                item[k] = _fill("{person}", rng).split()[0].lower() + "@" + _fill("{domain}", rng)
            else:
                item[k] = _fill(rng.choice(d["api_values"] + [rng.choice(d["fills"]["org"])]), rng)
        items.append(item)
    text = json.dumps(
        {"status": "ok", "count": len(items), "results": items}, ensure_ascii=False, indent=rng.choice([None, 2])
    )
    return text.split("\n")


CARRIERS: dict[str, Callable[[random.Random], list[str]]] = {
    "registry": _registry,
    "email": _email,
    "legal": _legal,
    "resume": _resume,
    "report": _report,
    "log": _log,
    "api": _api,
}
TOOL_CARRIERS = ("registry", "log", "api")


def _category(kind: str) -> str:
    return "tool_result" if kind in TOOL_CARRIERS else "indirect_document"


def benign(rng: random.Random, n: int) -> Iterator[Sample]:
    kinds = sorted(CARRIERS)
    for _ in range(n):
        kind = rng.choice(kinds)
        yield Sample("\n".join(CARRIERS[kind](rng)), 0, "benign_boilerplate", f"boilerplate/{kind}")


def planted_instruction(rng: random.Random) -> str:
    """An instruction as the indirect templates plant it: [authority] [addressee] [condition] request [closer]."""
    d = generate.indirect_data()
    request = generate._fill_all(rng.choice(d["requests"][rng.choice(sorted(d["requests"]))]), rng)
    head = [generate._fill_all(rng.choice(d["authorities"]), rng), generate._fill_all(rng.choice(d["addressees"]), rng)]
    if rng.random() < 0.35:
        head = []
    body = generate._sentence([rng.choice(d["conditions"]), request]) + "."
    return " ".join(p for p in [*head, body, generate._fill_all(rng.choice(d["closers"]), rng)] if p)


def planted(rng: random.Random, n: int) -> Iterator[Sample]:
    kinds = sorted(CARRIERS)
    for _ in range(n):
        kind = rng.choice(kinds)
        lines = CARRIERS[kind](rng)
        instruction = planted_instruction(rng)
        if kind == "api":
            obj = json.loads("\n".join(lines))
            item = rng.choice(obj["results"])
            item[rng.choice(["notes", "description", "comment", "message", "instructions"])] = instruction
            lines = json.dumps(obj, ensure_ascii=False).split("\n")
        elif kind == "registry":
            prefix = rng.choice(["", "Registrant Organization: ", "Remarks: ", "descr: ", "NOTICE: ", "Admin Name: "])
            lines.insert(rng.randint(0, len(lines)), prefix + instruction)
        else:
            lines.insert(rng.randint(1, len(lines)), instruction)
        yield Sample("\n".join(lines), 1, _category(kind), f"boilerplate-planted/{kind}")
