"""Reasoning policies: parsing, precedence, each engine's dialect, applying, splitting think spans."""

from __future__ import annotations

import pytest

from owstack.catalog.models import model_card
from owstack.config.load import load as load_config
from owstack.efficiency.config import ReasoningSection
from owstack.efficiency.instructions import instruction
from owstack.efficiency.policies import (
    ENGINES,
    Policy,
    apply,
    parse_policy,
    resolve,
    split_reasoning,
    translate,
)
from owstack.errors import ConfigError, InvalidRequest
from owstack.types import ChatRequest

QWEN = model_card("qwen3.5-9b")
NEMOTRON = model_card("nemotron-3-super")
MISTRAL = model_card("mistral-small-4")
SMOLLM = model_card("smollm2-135m-instruct")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", Policy("off")),
        ("OFF", Policy("off")),
        ("budget:512", Policy("budget", 512)),
        ("budget: 512", Policy("budget", 512)),
        (" budget:0 ", Policy("budget", 0)),
        ("concise", Policy("concise", concise_version="v1")),
        ("concise:v2", Policy("concise", concise_version="v2")),
        ("default", Policy("default")),
    ],
)
def test_parse_accepts_the_documented_forms(text: str, expected: Policy) -> None:
    assert parse_policy(text) == expected
    assert parse_policy(str(expected)) == expected  # str() is the canonical, re-parsable form


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "unknown reasoning policy 'fast'; allowed: off, budget:N"),
        ("budget:-1", "must be >= 0"),
        ("budget:lots", "whole number"),
        ("budget", "whole number"),
        ("concise:v9", "concise:v1 or concise:v2"),
        ("off:1", "unknown reasoning policy"),
        ("", "unknown reasoning policy"),
    ],
)
def test_parse_rejects_bad_policies_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        parse_policy(text, param="reasoning_policy")
    assert info.value.param == "reasoning_policy"
    assert info.value.status == 400


def test_resolve_precedence_request_header_tenant_layer() -> None:
    assert resolve("off", "budget:5", "concise", "budget:9") == Policy("off")
    assert resolve(None, "budget:5", "concise", "budget:9") == Policy("budget", 5)
    assert resolve(None, None, "concise", "budget:9") == Policy("concise")
    assert resolve(None, None, None, "budget:9") == Policy("budget", 9)
    assert resolve(None, None, None, None) is None
    assert resolve(None, " ", None, "off") == Policy("off")  # an empty header is no header
    assert resolve("default", None, "off", None) == Policy("default")  # a request may opt out
    assert resolve(None, None, "concise", None, concise_version="v2") == Policy("concise", concise_version="v2")
    with pytest.raises(InvalidRequest) as info:
        resolve(None, "nope", None, None)
    assert info.value.param == "x-owstack-reasoning"


def test_off_in_each_engine_dialect() -> None:
    assert translate(Policy("off"), "vllm", QWEN).body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert translate(Policy("off"), "sglang", NEMOTRON).body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert translate(Policy("off"), "vllm", MISTRAL).body == {"reasoning_effort": "none"}
    assert translate(Policy("off"), "llamacpp-server", QWEN).body == {
        "chat_template_kwargs": {"enable_thinking": False}
    }
    assert translate(Policy("off"), "ollama", QWEN).body == {"reasoning_effort": "none"}
    assert translate(Policy("off"), "openai", None).body == {"reasoning_effort": "none"}
    tgi = translate(Policy("off"), "tgi", QWEN)
    assert tgi.body == {} and tgi.warnings and not tgi.thinking_off
    # unknown model: the common switch
    assert translate(Policy("off"), "vllm", None).body == {"chat_template_kwargs": {"enable_thinking": False}}
    # a model without thinking: nothing to send, and the translation says so
    smol = translate(Policy("off"), "vllm", SMOLLM)
    assert smol.body == {} and "does not think" in smol.warnings[0]


def test_budget_in_each_engine_dialect() -> None:
    vllm = translate(Policy("budget", 256), "vllm", QWEN)
    assert vllm.body == {"thinking_token_budget": 256} and not vllm.warnings
    assert translate(Policy("budget", 256), "sglang", QWEN).body == {"custom_params": {"thinking_budget": 256}}
    assert translate(Policy("budget", 256), "llamacpp-server", QWEN).body == {"thinking_budget_tokens": 256}
    ollama = translate(Policy("budget", 256), "ollama", QWEN)
    assert ollama.body == {"reasoning_effort": "low"} and "no per-request thinking-token budget" in ollama.warnings[0]
    mistral_openai = translate(Policy("budget", 256), "openai", MISTRAL)  # only none/high exist: no "low"
    assert mistral_openai.body == {} and mistral_openai.warnings
    assert translate(Policy("budget", 256), "tgi", QWEN).warnings
    # budget:0 is off, in the engine's off dialect
    assert translate(Policy("budget", 0), "vllm", MISTRAL).body == {"reasoning_effort": "none"}


def test_embedded_engine_translation() -> None:
    budget = translate(Policy("budget", 16), "llamacpp", SMOLLM)
    assert budget.thinking_budget == 16 and budget.body == {}
    off = translate(Policy("off"), "llamacpp", QWEN)
    assert off.thinking_off and off.thinking_budget == 0  # NoThinking: an empty think span is prefilled
    assert translate(Policy("budget", 8), "llamacpp", MISTRAL).think_tags == ("[THINK]", "[/THINK]")
    assert translate(Policy("off"), "llamacpp", SMOLLM).thinking_budget is None


def test_concise_and_default_in_every_engine() -> None:
    for engine in ENGINES:
        concise = translate(Policy("concise", concise_version="v2"), engine, QWEN)
        assert concise.system_prefix == instruction("v2") and concise.body == {}
        assert translate(Policy("default"), engine, QWEN).body == {}
        assert translate(None, engine, None).system_prefix is None
    assert "Answer:" in instruction("v1") and instruction("v1") != instruction("v2")
    with pytest.raises(ValueError, match="unknown engine"):
        translate(Policy("off"), "triton", None)


def test_apply_merges_without_mutating_the_request() -> None:
    request = ChatRequest(
        model="m",
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "2+2?"}],
        params={"chat_template_kwargs": {"foo": 1}, "temperature": 0.2},
    )
    shaped = apply(translate(Policy("off"), "vllm", QWEN), request)
    assert shaped.params == {"chat_template_kwargs": {"foo": 1, "enable_thinking": False}, "temperature": 0.2}
    assert request.params == {"chat_template_kwargs": {"foo": 1}, "temperature": 0.2}
    concise = apply(translate(Policy("concise"), "vllm", QWEN), request)
    assert concise.messages[0]["content"] == instruction("v1") + "\n\nBe kind."
    assert request.messages[0]["content"] == "Be kind." and len(concise.messages) == 2
    bare = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    added = apply(translate(Policy("concise"), "llamacpp", None), bare)
    assert added.messages == [{"role": "system", "content": instruction("v1")}, {"role": "user", "content": "hi"}]
    assert bare.messages == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nadd them\n</think>\n\n4", ("add them", "4")),
        ("add them</think>4", ("add them", "4")),  # the opening tag was in the prompt
        ("<think>still thinking", ("still thinking", "")),  # cut off at max_tokens
        ("just 4", (None, "just 4")),
        ("[THINK]hmm[/THINK]5", ("hmm", "5")),
    ],
)
def test_split_reasoning(text: str, expected: tuple[str | None, str]) -> None:
    tags = ("[THINK]", "[/THINK]") if text.startswith("[") else ("<think>", "</think>")
    assert split_reasoning(text, tags) == expected


def test_config_section_validates_policies() -> None:
    section = ReasoningSection(layers={"coding": "budget:2048"}, default="concise", concise_version="v2")
    assert section.for_layer("coding") == "budget:2048"
    assert section.for_layer("edge") == "concise"
    assert ReasoningSection().for_layer("edge") is None
    cfg = load_config(None, overrides={"reasoning": {"layers": {"edge": "off"}}})
    assert cfg.file.reasoning.for_layer("edge") == "off"
    with pytest.raises(ConfigError, match=r"reasoning.layers: .*edge: the thinking budget must be >= 0"):
        load_config(None, overrides={"reasoning": {"layers": {"edge": "budget:-5"}}})
    with pytest.raises(ConfigError, match="unknown layer"):
        load_config(None, overrides={"reasoning": {"layers": {"gpu": "off"}}})
