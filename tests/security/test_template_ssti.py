"""Chat-template SSTI found on the AST: computed attribute names (concatenation, filters, variables,
format, join, reverse, namespace attributes, set blocks), data-derived keys, and benign templates with
the constructs real tool-calling templates use (index arithmetic, `items`, `tojson`, namespaces)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from owstack.security.model_scan import scan_models
from owstack.security.templates import find_ssti

ATTACKS = {
    # the held-out case of the issue: names built by concatenation, gated on the conversation
    "concat": "{% set u = '_' ~ '_' %}{% if 'go' in messages[-1]['content'] %}"
    "{{ namespace[u~'init'~u][u~'glo'~'bals'~u] }}{% endif %}",
    "format": "{{ x|attr('%c%c'|format(95, 95) ~ 'class' ~ '%c%c'|format(95, 95)) }}",
    "reverse": "{{ x[('ssalc'|reverse)] }}",
    "join": "{{ x[['_', '_', 'class', '_', '_']|join] }}",
    "percent": "{{ x['%sclass%s' % ('_' * 2, '_' * 2)] }}",
    "loop_var": "{% for k in ['_' ~ '_' + 'class'] %}{{ y[k] }}{% endfor %}",
    "namespace_attr": "{% set ns = namespace(k='') %}{% set ns.k = '_' ~ '_' %}{{ x[ns.k ~ 'class' ~ ns.k] }}",
    "set_block": "{% set k %}_{{ '_' }}class__{% endset %}{{ x[k] }}",
    "split": "{% for k in 'a;b'.split(';') %}{{ y[k] }}{% endfor %}",
    "plus": "{% set a = 'cla' %}{{ x[a + 'ss'] }}",
    "selectattr": "{{ xs|selectattr('_' ~ 'x')|list }}",
    "dict_kwarg": "{{ dict(__class__=1) }}",
    "literal": "{{ ''.__class__.__mro__ }}",
    "cycler": "{{ cycler.next }}",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_computed_dunder_access_is_critical(name: str) -> None:
    issues = find_ssti(ATTACKS[name])
    assert any(i.severity == "critical" for i in issues), (name, issues)


def test_key_from_the_conversation_is_reported() -> None:
    issues = find_ssti("{% for m in messages %}{{ obj[m.content] }}{% endfor %}")
    assert [i.severity for i in issues] == ["medium"]
    assert "request's data" in issues[0].message


BENIGN = [
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    # tool-calling shapes: previous/next message by index arithmetic, tojson, items, namespaces, macros
    "{%- set ns = namespace(system='') -%}{%- if messages[0]['role'] == 'system' %}{% set ns.system = messages[0]"
    "['content'] %}{% endif -%}{{ bos_token }}{{ ns.system }}{%- for m in messages %}"
    "{%- if m.role == 'tool' and (loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool') %}<tool>{% endif %}"
    "{%- if m.tool_calls %}{% for call in m.tool_calls %}{% set fn = call.function if call.function is defined "
    "else call %}{{ fn.name }} {{ fn.arguments|tojson }}{% endfor %}{% endif %}"
    "{%- if not loop.last and messages[loop.index0 + 1].role != 'tool' %}</tool>{% endif %}{% endfor %}",
    "{% macro schema(p) %}{% for name, spec in p.properties|items %}{{ name }}: {{ spec['type'] }}"
    "{% if spec.description is defined %} // {{ spec['description'] }}{% endif %}{% endfor %}{% endmacro %}"
    "{% for tool in tools %}{{ schema(tool.function.parameters) }}{% endfor %}",
    "{% for m in messages %}{{ m['content'].split('</think>')[-1]|trim }}{{ messages[-1]['role'] }}"
    "{{ m.content[0]['text'] if m.content is not string else m.content }}{% endfor %}",
]


def test_benign_templates_have_no_findings() -> None:
    for source in BENIGN:
        assert find_ssti(source) == [], source


def test_model_folder_templates(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "chat_template": [
                    {"name": "default", "template": BENIGN[0]},
                    {"name": "rag", "template": ATTACKS["concat"]},
                ]
            }
        )
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "chat_template.jinja").write_text(ATTACKS["join"])
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": BENIGN[1]}))
    found = [f for f in scan_models(tmp_path) if f.rule == "OWS-MDL-010"]
    assert {(f.file, f.severity) for f in found} == {
        ("tokenizer_config.json", "critical"),
        ("sub/chat_template.jinja", "critical"),
    }
    assert "'rag'" in next(f.message for f in found if f.file == "tokenizer_config.json")
