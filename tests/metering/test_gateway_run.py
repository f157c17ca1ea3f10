"""A mixed run through the real gateway: every request in the ledger, priced against its counterfactual."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from metering_helpers import rows, sample
from typer.testing import CliRunner

from owstack.cli import app
from procs import Proc, upstream_backend

GPT54 = (2.50, 15.0)  # $ per M tokens, input / output
GPT54_MINI = (0.75, 4.50)


def price(layer: str | None) -> tuple[float, float] | None:
    return {"coding": GPT54, "multimodal": GPT54, "edge": GPT54_MINI}.get(layer or "")


def mixed_run(client: openai.OpenAI) -> None:
    hello: list[Any] = [{"role": "user", "content": "Say hello."}]
    client.chat.completions.create(model="coding", messages=hello)  # broken -> falls back to gpu
    stream = client.chat.completions.create(
        model="coding", messages=hello, stream=True, stream_options={"include_usage": True}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "hello from good "
    for _ in client.chat.completions.create(model="multimodal", messages=hello, stream=True):
        pass  # the upstream sends no usage: owstack counts (estimates) the tokens
    client.chat.completions.create(model="edge", messages=hello, max_tokens=6)  # the embedded engine
    for _ in client.chat.completions.create(model="edge", messages=hello, max_tokens=6, stream=True):
        pass
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=hello)


@pytest.mark.slow
def test_a_mixed_run_is_metered_and_priced(fake_upstream: Proc, start_gateway: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config: dict[str, Any] = {
        "storage": {"url": url},
        "backends": {
            "gpu": upstream_backend(fake_upstream, "good", hardware="8xH100"),
            "nousage": upstream_backend(fake_upstream, "no-usage"),
            "broken": upstream_backend(fake_upstream, "fail-before-first-byte", health_check=False),
            "edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "max_tokens_default": 6},
        },
        "layers": {
            "coding": {"backends": ["broken"], "fallback": ["gpu"]},
            "multimodal": {"backends": ["nousage"]},
            "edge": {"backends": ["edge-local"]},
        },
        "routing": {"breaker": {"failure_threshold": 100}},
        "metering": {"flush_interval_ms": 50},
        "audit": {"enabled": False},
    }
    with start_gateway(config) as gw:
        mixed_run(openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=60))
        metrics = httpx.get(gw.url + "/metrics", timeout=10)
        assert metrics.status_code == 200
        gw.stop()  # SIGTERM: a graceful shutdown flushes the ledger before the process exits
    body = metrics.content
    assert sample(body, "owstack_requests_total", layer="coding", backend="gpu", status_class="2xx") == 2
    assert sample(body, "owstack_requests_total", layer="none", backend="none", status_class="4xx") == 1
    assert sample(body, "owstack_fallbacks_total", layer="coding") == 2
    assert sample(body, "owstack_tokens_total", layer="coding", backend="gpu", kind="prompt") == 22

    ledger = rows(url)
    assert len(ledger) == 6
    by_layer: dict[str | None, list[dict[str, Any]]] = {}
    for r in ledger:
        by_layer.setdefault(r["layer"], []).append(r)
    coding = by_layer["coding"]
    assert [(r["backend"], r["fallbacks"], r["prompt_tokens"], r["completion_tokens"]) for r in coding] == [
        ("gpu", 1, 11, 7),
        ("gpu", 1, 11, 7),
    ]
    for r in coding:  # the fake upstream reports 11 prompt and 7 completion tokens
        assert r["counterfactual_usd"] == pytest.approx((11 * 2.50 + 7 * 15.0) / 1e6)
        assert r["cost_kind"] == "selfhost" and r["cost_usd"] > 0
    [multimodal] = by_layer["multimodal"]
    assert multimodal["tokens_reported"] is False and multimodal["tokens_estimated"] is True
    assert multimodal["completion_tokens"] == 5  # "hello from no-usage " is 20 characters: 20 / 4
    assert multimodal["cost_kind"] == "unknown" and multimodal["cost_usd"] is None
    edge = by_layer["edge"]
    assert len(edge) == 2 and all(r["tokens_estimated"] is False and 0 < r["completion_tokens"] <= 6 for r in edge)
    assert all(r["cost_kind"] == "embedded" for r in edge)
    [refused] = by_layer[None]
    assert (refused["status"], refused["error_code"], refused["backend"]) == (404, "model_not_found", None)
    for r in ledger:
        p = price(r["layer"])
        expected = None if p is None else (r["prompt_tokens"] * p[0] + r["completion_tokens"] * p[1]) / 1e6
        assert r["counterfactual_usd"] == (None if expected is None else pytest.approx(expected))

    cfg = tmp_path / "cli.yaml"
    cfg.write_text(json.dumps({"storage": {"url": url}, "backends": config["backends"]}))
    result = CliRunner().invoke(app, ["usage", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    total = json.loads(result.output)["total"]
    assert total["requests"] == 6 and total["errors"] == 1
    assert total["counterfactual_usd"] == pytest.approx(sum(r["counterfactual_usd"] or 0 for r in ledger))
    assert total["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in ledger))
    assert total["uncosted"] == 1
