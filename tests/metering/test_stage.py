"""MeterStage.after on hand-built request contexts: one ledger row each, counted and priced."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_cpp import Llama
from metering_helpers import make_config, make_ctx, rows, sample

from owstack.catalog.models import embedded_gguf_path, model_card
from owstack.economics.costs import hardware_profile
from owstack.errors import AuthenticationFailed, UpstreamError
from owstack.metering.stage import MeterStage
from owstack.pipeline.context import Attempt, RequestContext
from owstack.types import Usage


def run(stage: MeterStage, *contexts: RequestContext) -> None:
    async def go() -> None:
        await stage.start()
        for ctx in contexts:
            await stage.after(ctx)
        await stage.aclose()

    asyncio.run(go())


@pytest.fixture(scope="module")
def vocab() -> Iterator[Llama]:
    yield Llama(model_path=str(embedded_gguf_path(model_card("smollm2-135m-instruct"))), vocab_only=True, verbose=False)


def test_a_served_request_is_recorded_with_upstream_usage_and_costs(db_url: str) -> None:
    stage = MeterStage(make_config(db_url))
    ctx = make_ctx("ok-1", usage=Usage(12_000, 800, 300, 4_000, True), latency=3.0, ttft=0.4, stream=True)
    ctx.tenant, ctx.reasoning_policy, ctx.finish_reason = "acme", "concise", "stop"
    run(stage, ctx)
    [r] = rows(db_url)
    assert (r["request_id"], r["tenant"], r["layer"], r["backend"], r["engine"]) == (
        "ok-1",
        "acme",
        "coding",
        "gpu",
        "vllm",
    )
    assert r["model"] == "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8" and r["stream"] is True
    assert (r["prompt_tokens"], r["completion_tokens"], r["reasoning_tokens"], r["cached_tokens"]) == (
        12_000,
        800,
        300,
        4_000,
    )
    assert r["tokens_reported"] is True and r["tokens_estimated"] is False
    assert r["latency_s"] == pytest.approx(3.0) and r["ttft_s"] == pytest.approx(0.4)
    assert (r["status"], r["error_code"], r["attempts"], r["fallbacks"]) == (200, None, 1, 0)
    assert (r["reasoning_policy"], r["finish_reason"]) == ("concise", "stop")
    # self-hosted: 8xH100 $/s x 3 s (no utilization measured yet: the ledger was empty)
    assert r["cost_kind"] == "selfhost" and r["utilization"] == 1.0
    assert r["cost_usd"] == pytest.approx(hardware_profile("8xH100").usd_per_hour / 3600 * 3.0)
    # counterfactual GPT-5.4: 8,000 input x $2.50 + 4,000 cached x $0.25 + 800 output x $15, per million
    assert r["counterfactual_model"] == "gpt-5.4"
    assert r["counterfactual_usd"] == pytest.approx((8_000 * 2.50 + 4_000 * 0.25 + 800 * 15.0) / 1e6)


def test_a_request_refused_before_routing_is_recorded_without_backend_or_cost(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url))
    ctx = make_ctx("refused-1", layer=None, backend=None, status=401, latency=0.001, ttft=None)
    ctx.error = AuthenticationFailed("bad key")
    run(stage, ctx)
    [r] = rows(sqlite_url)
    assert (r["status"], r["error_code"], r["layer"], r["backend"], r["model"]) == (
        401,
        "invalid_api_key",
        None,
        None,
        "auto",
    )
    assert (r["prompt_tokens"], r["completion_tokens"], r["attempts"], r["attempt_log"]) == (0, 0, 0, None)
    assert (r["cost_usd"], r["cost_kind"], r["counterfactual_usd"]) == (0.0, "none", None)


def test_a_502_after_a_fallback_records_the_path_and_bills_the_final_backend(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url, embedded_watts=100.0, embedded_usd_per_kwh=0.30))
    attempts = [Attempt("gpu", "upstream_timeout", 1.5), Attempt("edge-local", "upstream_error", 0.5)]
    ctx = make_ctx("fail-1", backend="edge-local", status=502, attempts=attempts, latency=2.25, ttft=None)
    ctx.error = UpstreamError("both failed")
    run(stage, ctx)
    [r] = rows(sqlite_url)
    assert (r["status"], r["error_code"], r["attempts"], r["fallbacks"]) == (502, "upstream_error", 2, 1)
    assert [a["backend"] for a in r["attempt_log"]] == ["gpu", "edge-local"]
    assert [a["outcome"] for a in r["attempt_log"]] == ["upstream_timeout", "upstream_error"]
    assert (r["prompt_tokens"], r["completion_tokens"], r["counterfactual_usd"]) == (0, 0, 0.0)
    # the embedded engine's power for its 0.75 s (2.25 s minus the 1.5 s spent on the gpu backend)
    assert r["cost_kind"] == "embedded"
    assert r["cost_usd"] == pytest.approx(100.0 / 1000 * 0.75 / 3600 * 0.30)


def test_a_stream_without_usage_is_counted_with_the_models_own_tokenizer(sqlite_url: str, vocab: Llama) -> None:
    stage = MeterStage(make_config(sqlite_url))
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three primes."}]
    output = ["Two, ", "three ", "and five — all primes. ", "Ünïcode too."]
    ctx = make_ctx("stream-1", layer="edge", backend="edge-local", messages=messages, output=output, stream=True)
    run(stage, ctx)
    [r] = rows(sqlite_url)
    chatml = (
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName three primes.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    expected_prompt = len(vocab.tokenize(chatml.encode(), add_bos=False, special=True))
    expected_completion = len(vocab.tokenize("".join(output).encode(), add_bos=False, special=False))
    assert (r["prompt_tokens"], r["completion_tokens"]) == (expected_prompt, expected_completion)
    assert r["tokens_reported"] is False and r["tokens_estimated"] is False
    assert expected_completion != math.ceil(len("".join(output)) / 4)  # not the estimate by accident
    assert r["counterfactual_usd"] == pytest.approx((expected_prompt * 0.75 + expected_completion * 4.50) / 1e6)
    body = stage.metrics.render()[0]  # the counted tokens reached the metrics too
    labels = {"layer": "edge", "backend": "edge-local"}
    assert sample(body, "owstack_tokens_total", **labels, kind="completion") == expected_completion
    assert sample(body, "owstack_tokens_total", **labels, kind="prompt") == expected_prompt


def test_a_model_without_a_local_tokenizer_is_estimated_and_marked(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url))
    output = ["x" * 41]
    ctx = make_ctx(
        "est-1", layer="multimodal", backend="plain", output=output, messages=[{"role": "user", "content": "y" * 8}]
    )
    run(stage, ctx)
    [r] = rows(sqlite_url)
    assert r["tokens_estimated"] is True and r["tokens_reported"] is False
    assert (r["completion_tokens"], r["prompt_tokens"]) == (11, 4 + 2)  # ceil(41/4); 4 per message + ceil(8/4)
    assert r["cost_kind"] == "unknown" and r["cost_usd"] is None


def test_a_proprietary_backend_costs_what_it_charges(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url))
    run(stage, make_ctx("api-1", layer="edge", backend="oai", usage=Usage(1_000, 100, 0, 0, True)))
    [r] = rows(sqlite_url)
    assert r["cost_kind"] == "api" and r["counterfactual_model"] == "gpt-5.4"
    assert r["cost_usd"] == pytest.approx((1_000 * 2.50 + 100 * 15.0) / 1e6) == r["counterfactual_usd"]


def test_with_metering_disabled_there_is_no_ledger_but_metrics_still_count(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url, enabled=False))
    assert stage.writer is None
    run(stage, make_ctx("off-1"), make_ctx("off-2", status=503))
    body = stage.metrics.render()[0]
    labels = {"layer": "coding", "backend": "gpu"}
    assert sample(body, "owstack_requests_total", **labels, status_class="2xx") == 1
    assert sample(body, "owstack_requests_total", **labels, status_class="5xx") == 1
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_a_context_that_cannot_be_metered_does_not_break_the_request(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stage = MeterStage(make_config(sqlite_url))
    broken = make_ctx("broken-1")
    broken.status = None  # type: ignore[assignment]
    run(stage, broken, make_ctx("fine-1"))
    assert [r["request_id"] for r in rows(sqlite_url)] == ["fine-1"]
    assert "request broken-1 could not be metered" in caplog.text


def test_tokens_the_gateway_already_counted_are_kept_and_marked(sqlite_url: str) -> None:
    stage = MeterStage(make_config(sqlite_url))
    counted = Usage(prompt_tokens=17, completion_tokens=9, reported=False)  # as the gateway sets it for a usage chunk
    run(
        stage,
        make_ctx("gguf-1", layer="edge", backend="edge-local", usage=counted, output=["ignored"]),
        make_ctx("est-2", layer="multimodal", backend="plain", usage=counted, output=["ignored"]),
    )
    got = {r["request_id"]: r for r in rows(sqlite_url)}
    assert (got["gguf-1"]["prompt_tokens"], got["gguf-1"]["completion_tokens"]) == (17, 9)
    assert got["gguf-1"]["tokens_estimated"] is False and got["est-2"]["tokens_estimated"] is True
    assert got["gguf-1"]["tokens_reported"] is False
