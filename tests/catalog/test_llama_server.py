"""The SmolLM2 llama.cpp recipe run for real: the printed llama-cpp-python command serves chat completions."""

from __future__ import annotations

import os
import sys

import httpx
import pytest

from owstack.catalog.recipes import recipe

from .llama_server import LlamaServer


def test_llama_cpp_server_imports() -> None:
    import importlib.util

    assert importlib.util.find_spec("llama_cpp.server.app") is not None
    import llama_cpp.server.app  # noqa: F401  (fails when the `server` extra's packages are missing)


def test_the_printed_command_is_what_runs(smollm2_server: LlamaServer) -> None:
    printed = recipe("smollm2-135m-instruct", "llamacpp", port=smollm2_server.port).alternatives["llama-cpp-python"]
    assert list(smollm2_server.argv[1 : len(printed)]) == printed[1:]  # only `python` is replaced
    assert smollm2_server.argv[0] == sys.executable


def test_models_endpoint_reports_the_alias(smollm2_server: LlamaServer) -> None:
    r = httpx.get(f"{smollm2_server.base_url}/models", timeout=10)
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["smollm2-135m-instruct"]


def test_one_chat_completion(smollm2_server: LlamaServer) -> None:
    body = {
        "model": smollm2_server.model,
        "messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        "max_tokens": 16,
        "temperature": 0,
    }
    r = httpx.post(f"{smollm2_server.base_url}/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, smollm2_server.log()
    data = r.json()
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].strip(), data
    assert choice["finish_reason"] in ("stop", "length")
    assert data["usage"]["prompt_tokens"] > 5 and 0 < data["usage"]["completion_tokens"] <= 16


def test_server_stops_cleanly() -> None:
    from .llama_server import llama_server

    with llama_server() as server:
        pid = server.pid
        assert httpx.get(f"{server.base_url}/models", timeout=10).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/models", timeout=2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
