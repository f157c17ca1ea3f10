"""The official `openai` client against a running `owstack serve` on the embedded model."""

from __future__ import annotations

import httpx
import openai
import pytest

from procs import Proc


@pytest.fixture(scope="module")
def client(embedded_gateway: Proc) -> openai.OpenAI:
    return openai.OpenAI(base_url=embedded_gateway.base_url, api_key="unused", max_retries=0, timeout=300)


def test_non_streaming_completion(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="edge", messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=24, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-owstack-layer"] == "edge"
    assert raw.headers["x-owstack-backend"] == "edge-local"
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-owstack-ai-generated"] == "true"
    assert completion.object == "chat.completion"
    assert completion.model == "smollm2-135m-instruct"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 5
    assert 0 < completion.usage.completion_tokens <= 24
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert (completion.model_extra or {})["owstack"]["ai_generated"] is True


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="edge",
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1] and not chunks[-1].choices
    assert 0 < usage_chunks[0].usage.completion_tokens <= 20


def test_streaming_without_usage_sends_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="edge", messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0, stream=True
        )
    )
    assert chunks and all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


def test_content_parts_of_text_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="edge",
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
            {"role": "user", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hello."}]},
        ],
        max_tokens=8,
    )
    assert completion.choices[0].message.content


def test_image_part_to_text_only_model_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="auto",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    ],
                }
            ],
        )
    error = info.value.body
    assert isinstance(error, dict)
    assert error["param"] == "messages[0].content[1]"
    assert error["code"] == "unsupported_content"
    assert info.value.response.headers["x-owstack-layer"] == "multimodal"  # auto routed the image


def test_models_lists_layers_and_backend_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"coding", "multimodal", "edge", "auto", "smollm2-135m-instruct"} <= set(ids)


def test_model_id_routes_directly(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert raw.headers["x-owstack-backend"] == "edge-local"
    assert raw.parse().choices[0].message.content is not None


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-nope", messages=[{"role": "user", "content": "Hi"}])
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert info.value.body["param"] == "model"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "edge", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "edge", "messages": []}, "messages"),
        ({"model": "edge"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "edge", "messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
        ({"model": "edge", "messages": [{"role": "user", "content": "x"}], "temperature": 7}, "temperature"),
        ({"model": "edge", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "edge", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "edge", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].image_url",
        ),
        (
            {
                "model": "edge",
                "messages": [{"role": "user", "content": "x"}],
                "stream_options": {"include_usage": True},
            },
            "",
        ),
        ({"model": "edge", "messages": [{"role": "user", "content": "x"}], "reasoning_policy": "sometimes"}, None),
    ],
)
def test_schema_violations_are_400_with_param(client: openai.OpenAI, body: dict, param: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", body=body, cast_to=httpx.Response)
    error = info.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert (error["param"] or "") == param, error
    assert "Traceback" not in error["message"]


def test_malformed_json_is_400_and_the_gateway_keeps_serving(embedded_gateway: Proc, client: openai.OpenAI) -> None:
    for bad in (b"{not json", b"[1, 2]", b"", "\u00ff".encode("latin-1")):
        r = httpx.post(
            embedded_gateway.base_url + "/chat/completions", content=bad, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        body = r.json()["error"]
        assert body["type"] == "invalid_request_error" and body["code"] == "invalid_json"
        assert r.headers["x-request-id"]
    assert client.chat.completions.create(model="edge", messages=[{"role": "user", "content": "Hi"}], max_tokens=3)


def test_unknown_route_and_method(embedded_gateway: Proc) -> None:
    r = httpx.get(embedded_gateway.base_url + "/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.get(embedded_gateway.url + "/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_health_and_readiness(embedded_gateway: Proc) -> None:
    assert httpx.get(embedded_gateway.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(embedded_gateway.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["layers"]["edge"]["available"] == ["edge-local"]


def test_client_request_id_is_echoed(embedded_gateway: Proc) -> None:
    r = httpx.post(
        embedded_gateway.base_url + "/chat/completions",
        json={"model": "edge", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
        headers={"x-request-id": "trace-0123456789"},
        timeout=120,  # a generation: httpx's 5 s default is too short on a machine busy with other work
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "trace-0123456789"
    assert r.json()["owstack"]["request_id"] == "trace-0123456789"


def test_thinking_budget_on_the_embedded_engine(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="edge",
        messages=[{"role": "user", "content": "What is 12 times 11? Think first."}],
        max_tokens=48,
        temperature=0,
        extra_body={"reasoning_policy": "budget:6"},
    )
    message = completion.choices[0].message
    reasoning = (message.model_extra or {}).get("reasoning_content")
    assert reasoning is not None
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 6
