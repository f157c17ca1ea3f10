"""The embedded engine through the gateway: concurrent requests queue, a full queue is a 503, a client that
goes away stops its generation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from procs import Proc


def metric(gw: Proc, name: str, backend: str = "edge-local") -> float:
    for family in text_string_to_metric_families(httpx.get(gw.url + "/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("backend") == backend:
                return float(sample.value)
    raise AssertionError(f"{name} not exposed")


def test_concurrent_requests_queue_for_the_model(embedded_gateway: Proc) -> None:
    """Each of several interleaved requests (streams among them) gets its own answer: the model echoes the
    number it was asked to say, so a mixed-up KV cache or a crossed stream shows as a wrong number."""
    numbers = [17, 42, 63, 88, 91, 35]

    async def one(client: openai.AsyncOpenAI, n: int, stream: bool) -> str:
        kwargs: dict[str, Any] = dict(
            model="edge",
            messages=[{"role": "user", "content": f"Say the number {n}."}],
            max_tokens=12,
            temperature=0,
        )
        if not stream:
            c = await client.chat.completions.create(**kwargs)
            assert c.usage is not None and 0 < c.usage.completion_tokens <= 12
            return c.choices[0].message.content or ""
        chunks = [c async for c in await client.chat.completions.create(stream=True, **kwargs)]
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    async def burst() -> list[str]:
        # closed in this loop: left to the garbage collector, it would close in whichever test's loop runs then
        async with openai.AsyncOpenAI(
            base_url=embedded_gateway.base_url, api_key="x", max_retries=0, timeout=300
        ) as client:
            return await asyncio.gather(*(one(client, n, stream=i % 2 == 1) for i, n in enumerate(numbers)))

    answers = asyncio.run(burst())
    for n, answer in zip(numbers, answers, strict=True):
        assert str(n) in answer, (n, answer)
        assert not any(str(m) in answer for m in numbers if m != n), (n, answer)


def test_full_queue_is_503_and_served_requests_are_unaffected(start_gateway: Any) -> None:
    config = {"backends": {"tiny": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "max_queue": 1}}}
    with start_gateway(config) as gw:

        async def burst() -> list[Any]:
            async with openai.AsyncOpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=300) as client:

                async def one() -> Any:
                    try:
                        return await client.chat.completions.create(
                            model="edge",
                            messages=[{"role": "user", "content": "Tell me about the sea."}],
                            max_tokens=24,
                        )
                    except openai.APIStatusError as exc:
                        return exc

                return await asyncio.gather(*(one() for _ in range(4)))

        results = asyncio.run(burst())
        refused = [r for r in results if isinstance(r, openai.APIStatusError)]
        served = [r for r in results if not isinstance(r, openai.APIStatusError)]
        assert served and refused
        assert all(r.status_code == 503 and r.body["code"] == "queue_full" for r in refused)  # type: ignore[index]
        assert all(s.choices[0].message.content for s in served)


def test_a_client_that_goes_away_stops_generation(embedded_gateway: Proc) -> None:
    generated_before = metric(embedded_gateway, "owstack_engine_tokens_generated_total")
    cancelled_before = metric(embedded_gateway, "owstack_engine_generations_cancelled_total")
    with httpx.stream(
        "POST",
        embedded_gateway.base_url + "/chat/completions",
        json={
            "model": "edge",
            "messages": [{"role": "user", "content": "Write the numbers from 1 to 500, one per line."}],
            "max_tokens": 400,
            "temperature": 0,
            "stream": True,
        },
        timeout=120,
    ) as r:
        lines = r.iter_lines()
        for _ in range(6):
            next(lines)
    deadline = time.monotonic() + 60
    while metric(embedded_gateway, "owstack_engine_generations_cancelled_total") == cancelled_before:
        assert time.monotonic() < deadline, "generation was not cancelled"
        time.sleep(0.2)
    generated = metric(embedded_gateway, "owstack_engine_tokens_generated_total") - generated_before
    assert generated < 100  # the greedy answer runs past 120 tokens when nobody stops it
    assert metric(embedded_gateway, "owstack_engine_queue_depth") == 0
