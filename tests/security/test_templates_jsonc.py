"""The sandboxed chat-template renderer and the JSONC reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from owstack.security.jsonc import JSONCError, parse
from owstack.security.templates import (
    TemplateRenderError,
    TemplateSandboxViolation,
    find_ssti,
    render,
)

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_renders_a_chat_template_like_hugging_face() -> None:
    out = render(CHATML, messages=[{"role": "user", "content": "hi"}], add_generation_prompt=True)
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    ns = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"
    assert render(ns, messages=[{}, {}, {}]) == "3"
    assert render("{{ messages | tojson }}", messages=[{"a": 1}]) == '[{"a": 1}]'


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ messages.append(1) }}",
        "{{ 'a' * 100000000 }}",
        "{{ 2 ** 100000 }}",
        "{% for i in range(1000000) %}{% endfor %}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    ],
)
def test_ssti_and_resource_abuse_fail_in_the_sandbox(payload: str) -> None:
    with pytest.raises(TemplateSandboxViolation):
        render(payload, messages=[{"role": "user", "content": "x"}])


def test_attr_filter_and_self_do_not_leak() -> None:
    assert render("{{ ''|attr('__class__') }}") == ""
    assert render("{{ messages.__class__.__init__ }}", messages=[]) == ""
    assert "TemplateReference" not in render("{{ self._TemplateReference__context }}")


def test_time_limit_stops_busy_templates() -> None:
    with pytest.raises(TemplateSandboxViolation, match="longer than"):  # 10^8 iterations, stopped by the limit
        render("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}")


def test_errors_are_template_render_errors() -> None:
    with pytest.raises(TemplateRenderError, match="does not compile"):
        render("{% if %}")
    with pytest.raises(TemplateRenderError, match="roles must alternate"):
        render("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(TemplateRenderError):
        render("{{ messages[5]['content'] }}", messages=[])


def test_find_ssti_flags_payloads_not_normal_templates() -> None:
    assert find_ssti(CHATML) == []
    constructs = {i.construct for i in find_ssti("{{ cycler.__init__.__globals__ }}\n{{ ''|attr('__class__') }}")}
    assert {"cycler", ".__init__", ".__globals__", "|attr"} <= constructs
    assert [i.line for i in find_ssti("ok\n\n{{ x.__class__ }}")] == [3]
    assert any("popen" in i.message for i in find_ssti("{{ x[('po' ~ 'pen')] }}{{ 'os.popen' }}"))


JSONC = """// leading comment
{
  "a": 1, /* inline */
  "b": {
    "c": [10, {"d": "x // not a comment"},],
  },
  "e": "quote \\" and backslash \\\\",
}
"""


def test_jsonc_values_and_lines() -> None:
    doc = parse(JSONC)
    assert doc.value == {"a": 1, "b": {"c": [10, {"d": "x // not a comment"}]}, "e": 'quote " and backslash \\'}
    assert doc.line(("a",)) == 3
    assert doc.line(("b", "c")) == 5
    assert doc.line(("b", "c", 1, "d")) == 5
    assert doc.line(("e",)) == 7
    assert doc.line(("missing", "x")) == 1
    assert parse("\ufeff{}").value == {}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{", 1),
        ('{"a" 1}', 1),
        ('{\n\n"a": tru}', 3),
        ("[1 2]", 1),
        ("/* open", 1),
        ('{"a": "\\q"}', 1),
        ("{} x", 1),
        ("", 1),
        ("[" * 300 + "]" * 300, 1),
    ],
)
def test_jsonc_errors_carry_a_line(text: str, where: int) -> None:
    with pytest.raises(JSONCError) as info:
        parse(text)
    assert info.value.line == where


def test_jsonc_matches_json_on_the_fixtures() -> None:
    import json

    for path in (Path(__file__).parent / "fixtures").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        try:
            expected = json.loads(text)
        except json.JSONDecodeError:
            continue  # JSONC or deliberately broken
        assert parse(text).value == expected, path
