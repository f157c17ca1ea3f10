"""CPU time of the guard's keyed rule modules on 1, 16 and 256 KB of text (docs/security.md section 6, seventh pass).

    PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python bench/guard_rules_cost.py

Three texts per size: ordinary prose (few key words), text dense with the modules' key words (benign requests,
invoices, verdicts reported, replies asked of people, in several languages), the worst case for keyed search, and a
registry-like record whose fields and notices are dense with the record patterns' words (`records` reads only
records; eighth pass), and text dense with `latent`'s words (ninth pass). Each figure is the minimum CPU time
(`time.process_time`) of 20 runs of one module's `findings` on that text.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from owstack.security.guard import (
    hijack,
    latent,
    orders_i18n,
    records,
    requests,
    takeover,
    tool_orders,
    verdicts,
    vouch,
)

PROSE = (
    "The quarterly report shows revenue up 12% year over year, driven by the new subscription tier. The team "
    "shipped two releases and closed 140 tickets; the backlog is down to 35 items. Hiring is on track, with three "
    "engineers joining in January. Costs stayed flat apart from the cloud bill, which rose with traffic.\n\n"
)
DENSE = (
    "Please send me the report by Friday. Please transfer EUR 450 to IBAN DE89 3704 0044 0532 0130 00, quoting "
    "invoice number 2026-118. Please grant access to the new hire after HR approves. Could you pull the Q3 numbers "
    "and email them to me? Please delete the duplicate rows. Please change the meeting room to 4B. Analysts "
    "concluded the domain is safe. Please reply with your availability. Los analistas concluyeron que el dominio es "
    "seguro. Indiquez si le fichier est sûr ou malveillant. Antworte bitte bis Freitag. 分析人员认为该域名是安全的。\n"
)
RECORD = (
    "Domain Name: SAFE-HARBOR.EXAMPLE\nRegistrant Organization: Safe Harbor Holdings LLC\nRegistrant Street: 12 Quay\n"
    "Registrar Abuse Contact Email: abuse@registrar.example\nremarks: If you are reviewing this record to report abuse,"
    " contact the registrar. The registrant is not responsible for the site. Analysts concluded the domain is benign.\n"
    "notice: You must not use this data for marketing; by submitting a query you agree to these terms. No further "
    "action is required. If asked, the registrar will confirm the transfer. Include log excerpts in your report.\n"
)
#: benign text dense with `latent`'s key words (ninth pass): translation exercises, FAQ answers, finished tasks,
#: style rules with "do not", moderation policies naming toxic text
LATENT = (
    "Translate the following sentence into German. Sentence: the toxic waste report is done. Answer: yes, the task is "
    "complete when the light turns green. Do not apologize too much; never refuse a return without the receipt. "
    "Models must not produce hateful jokes about protected groups. The summary has been reviewed and is finished. "
    "Explain how to make a sourdough starter. Don't include your password, and never say sorry for asking.\n"
)
MODULES: dict[str, Callable[[str], list[tuple[int, int, str]]]] = {
    "requests (OWS-GRD-023)": requests.findings,
    "orders_i18n (OWS-GRD-018)": orders_i18n.findings,
    "hijack (OWS-GRD-018)": hijack.findings,
    "verdicts (OWS-GRD-018)": verdicts.findings,
    "tool_orders (OWS-GRD-018)": tool_orders.findings,
    "records (OWS-GRD-018)": records.findings,
    "latent (OWS-GRD-018)": latent.findings,
    "takeover (OWS-GRD-018)": takeover.findings,
    "vouch (OWS-GRD-018)": vouch.findings,
}


def _text(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _cpu_ms(fn: Callable[[str], object], text: str, runs: int = 20) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn(text)
        best = min(best, time.process_time() - start)
    return best * 1000


def main() -> None:
    sizes = (1024, 16 * 1024, 256 * 1024)
    print(f"{'module':28} {'text':6} " + " ".join(f"{s // 1024:>7} KB" for s in sizes))
    for name, fn in MODULES.items():
        for label, unit in (("prose", PROSE), ("dense", DENSE), ("record", RECORD), ("latent", LATENT)):
            row = " ".join(f"{_cpu_ms(fn, _text(unit, s)):7.2f} ms" for s in sizes)
            print(f"{name:28} {label:6} {row}")


if __name__ == "__main__":
    main()
