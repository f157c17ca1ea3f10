"""Layer choice (aliases, auto rules, model ids) and the least-outstanding balancer."""

from __future__ import annotations

from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.errors import ModelNotFound
from owstack.routing.breaker import CircuitBreaker
from owstack.routing.health import HealthChecker
from owstack.routing.router import Router
from owstack.routing.slot import Slot
from owstack.types import ChatRequest

CONFIG = {
    "backends": {
        "big-a": {"engine": "vllm", "url": "http://a:8000/v1", "model": "nemotron"},
        "big-b": {"engine": "vllm", "url": "http://b:8000/v1", "model": "nemotron"},
        "vision": {"engine": "sglang", "url": "http://c:8000/v1", "model": "mistral-small-4"},
        "small": {"engine": "ollama", "url": "http://d:11434/v1", "model": "qwen3.5:2b"},
    },
    "layers": {
        "coding": {"backends": ["big-a", "big-b"], "fallback": ["small"]},
        "multimodal": {"backends": ["vision"]},
        "edge": {"backends": ["small"]},
    },
}


class FakeBackend:
    def __init__(self, name: str, model: str) -> None:
        self.name = name
        self.model = model
        self.engine = "vllm"

    async def health(self, timeout: float = 2.0) -> bool:
        return True


def make_router(config: dict[str, Any] = CONFIG) -> Router:
    cfg = from_dict(config)
    slots = {
        name: Slot(name, FakeBackend(name, s.model), CircuitBreaker(name, 2, 30))  # type: ignore[arg-type]
        for name, s in cfg.file.backends.items()
    }
    health = HealthChecker(list(s.backend for s in slots.values()), interval_s=1, timeout_s=1, unhealthy_after=1)  # type: ignore[misc]
    return Router(cfg, slots, health)


def req(content: Any, **kw: Any) -> ChatRequest:
    return ChatRequest(model="auto", messages=[{"role": "user", "content": content}], **kw)


@pytest.mark.parametrize(
    ("request_", "layer", "reason"),
    [
        (req("Tell me a story about a cat."), "edge", "auto:default"),
        (req("Fix this:\n```python\nprint(1\n```"), "coding", "auto:code"),
        (req("def add(a, b): return a + b  -- why does this fail?"), "coding", "auto:code"),
        (req("I get a Traceback when I run my script"), "coding", "auto:code"),
        (req("What's the weather?", has_tools=True), "coding", "auto:tools"),
        (
            req([{"type": "image_url", "image_url": {"url": "x"}}], has_images=True, has_tools=True),
            "multimodal",
            "auto:images",
        ),
        (req("Define the word class in sociology."), "edge", "auto:default"),
    ],
)
def test_auto_rules(request_: ChatRequest, layer: str, reason: str) -> None:
    route = make_router().resolve(request_)
    assert (route.layer, route.reason) == (layer, reason)


def test_auto_rules_come_from_config() -> None:
    config = {**CONFIG, "routing": {"auto": {"default": "coding", "code": "edge"}}}
    router = make_router(config)
    assert router.resolve(req("hello")).layer == "coding"
    assert router.resolve(req("```x```")).layer == "edge"


def test_layer_alias_and_model_id_and_backend_name() -> None:
    router = make_router()
    assert router.resolve(ChatRequest(model="coding", messages=[])).replicas == ("big-a", "big-b")
    assert router.resolve(ChatRequest(model="coding", messages=[])).fallback == ("small",)
    by_model = router.resolve(ChatRequest(model="nemotron", messages=[]))
    assert (by_model.layer, by_model.replicas, by_model.reason) == ("coding", ("big-a", "big-b"), "model")
    by_name = router.resolve(ChatRequest(model="vision", messages=[]))
    assert (by_name.layer, by_name.replicas) == ("multimodal", ("vision",))
    with pytest.raises(ModelNotFound):
        router.resolve(ChatRequest(model="gpt-4o", messages=[]))


def test_pick_prefers_fewest_outstanding_among_healthy_with_closed_breakers() -> None:
    router = make_router()
    a, b = router.slots["big-a"], router.slots["big-b"]
    a.outstanding, b.outstanding = 3, 1
    assert router.pick(["big-a", "big-b"], set()) is b
    b.outstanding = 5
    assert router.pick(["big-a", "big-b"], set()) is a
    assert router.pick(["big-a", "big-b"], {"big-a"}) is b
    router.health.state["big-a"].healthy = False
    assert router.pick(["big-a", "big-b"], set()) is b, "healthy first, even with more outstanding"
    b.breaker.failure()
    b.breaker.failure()
    assert router.pick(["big-a", "big-b"], set()) is a, "an unhealthy replica beats an open breaker"
    router.slots["big-a"].breaker.failure()
    router.slots["big-a"].breaker.failure()
    assert router.pick(["big-a", "big-b"], set()) is None
    assert router.unavailable_reasons(["big-a", "big-b"]) == ["big-a (circuit open)", "big-b (circuit open)"]
