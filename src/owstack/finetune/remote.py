"""Loading adapters into running vLLM and SGLang servers through their adapter endpoints.

    vLLM   (started with --enable-lora; runtime loading needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)
           POST /v1/load_lora_adapter    {"lora_name": N, "lora_path": P}
           POST /v1/unload_lora_adapter  {"lora_name": N}
    SGLang (started with --enable-lora)
           POST /load_lora_adapter       {"lora_name": N, "lora_path": P}
           POST /unload_lora_adapter     {"lora_name": N}

`P` is the PEFT adapter folder as the server sees it (a shared volume, or `--server-path`). The endpoints
are at the server's root, next to the OpenAI base `/v1` the backend's `url` names.
"""

from __future__ import annotations

from typing import Any

from owstack.finetune.errors import FinetuneError

ENDPOINTS = {
    "vllm": ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"),
    "sglang": ("/load_lora_adapter", "/unload_lora_adapter"),
}


def _root(url: str) -> str:
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _post(section: Any, path: str, body: dict[str, Any], api_key: str | None, backend: str) -> None:
    import httpx

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    url = _root(section.url) + path
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=120.0)
    except httpx.HTTPError as exc:
        raise FinetuneError(f"backend {backend}: cannot reach {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        detail = response.text[:300].replace("\n", " ")
        raise FinetuneError(f"backend {backend}: {url} answered HTTP {response.status_code}: {detail}")


def load(section: Any, backend: str, name: str, server_path: str, api_key: str | None = None) -> None:
    load_path, _ = ENDPOINTS[section.engine]
    _post(section, load_path, {"lora_name": name, "lora_path": server_path}, api_key, backend)


def unload(section: Any, backend: str, name: str, api_key: str | None = None) -> None:
    _, unload_path = ENDPOINTS[section.engine]
    _post(section, unload_path, {"lora_name": name}, api_key, backend)
