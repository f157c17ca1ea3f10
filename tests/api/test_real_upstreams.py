"""`openai_http` against real, separate OpenAI-compatible servers: llama-cpp-python's own server, and a
second owstack process on the embedded model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from catalog.llama_server import llama_server
from procs import Proc


@pytest.fixture(scope="module")
def llama_cpp_server() -> Iterator[Any]:
    with llama_server() as server:
        yield server


def check_upstream(client: openai.OpenAI, backend: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="edge",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0,
    )
    completion = raw.parse()
    assert raw.headers["x-owstack-backend"] == backend
    assert completion.choices[0].message.content
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 16
    chunks = list(
        client.chat.completions.create(
            model="edge",
            messages=[{"role": "user", "content": "Name a colour."}],
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 8


def test_llama_cpp_python_server_as_upstream(llama_cpp_server: Any, start_gateway: Any) -> None:
    config = {
        "backends": {
            "llama-server": {
                "engine": "llamacpp-server",
                "url": llama_cpp_server.base_url,
                "model": llama_cpp_server.model,
            }
        }
    }
    with start_gateway(config) as gw:
        check_upstream(openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=120), "llama-server")


def test_a_second_owstack_as_upstream(embedded_gateway: Proc, start_gateway: Any) -> None:
    config = {
        "backends": {
            "inner": {"engine": "llamacpp-server", "url": embedded_gateway.base_url, "model": "smollm2-135m-instruct"}
        }
    }
    with start_gateway(config) as gw:
        check_upstream(openai.OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=120), "inner")
