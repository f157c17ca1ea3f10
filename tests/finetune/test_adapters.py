"""Registering and routing adapters: checks at `adapters add`, routes by jurisdiction, vLLM/SGLang endpoints."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from owstack.cli import app
from owstack.config.load import from_dict
from owstack.errors import ModelNotFound, ResidencyViolation
from owstack.finetune import lineage
from owstack.finetune.registry import Registry
from owstack.routing.router import Router
from owstack.types import ChatRequest
from procs import run_gateway, run_upstream, upstream_backend

SMOL_SHA = None  # filled from the catalog


def fake_run(folder: Path, name: str, serving: list[str], base_sha: str | None = None) -> Path:
    """A run folder as `owstack finetune run` leaves it (no training: the registry only copies files)."""
    from owstack.catalog.models import model_card

    sha = base_sha or model_card("smollm2-135m-instruct").gguf.sha256  # type: ignore[union-attr]
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    (folder / "adapter.gguf").write_bytes(b"GGUF-test-" + name.encode())
    record = {
        "schema": lineage.SCHEMA,
        "name": name,
        "kind": "lora-adapter",
        "method": "sft",
        "created": "2026-12-02T00:00:00Z",
        "base": {"spec": "embedded", "kind": "gguf", "path": "x", "sha256": sha, "catalog_id": "smollm2-135m-instruct"},
        "data": {
            "sources": [
                {
                    "kind": "file",
                    "name": "t.jsonl",
                    "sha256": "ab" * 32,
                    "rows": 10,
                    "examples": 10,
                    "jurisdictions": serving,
                }
            ],
            "train_examples": 8,
            "eval_examples": 2,
            "redaction": None,
        },
        "jurisdiction": {"compute": serving[0], "serving": serving},
        "recipe": {},
        "recipe_sha256": "cd" * 32,
        "code": {"owstack": "0.1.0", "git_commit": None},
        "metrics": {"train_loss": 0.5, "eval_loss": 0.25, "global_step": 3},
        "artifacts": {},
        "run": {"by": "os-user:tester", "started": "", "seconds": 1, "processes": 1, "device": "cpu"},
    }
    (folder / "lineage.json").write_text(json.dumps(record))
    return folder


def _config_file(tmp: Path, backends: dict[str, Any], **extra: Any) -> Path:
    raw = {
        "backends": backends,
        "adapters": {"registry": str(tmp / "registry"), **extra},
        "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "keys")},
    }
    path = tmp / "owstack.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _add(config: Path, run: Path, backend: str, *extra: str) -> Any:
    return CliRunner().invoke(app, ["adapters", "add", str(run), "-b", backend, "-c", str(config), *extra])


def test_add_refuses_backends_outside_the_datas_jurisdictions_or_with_other_weights(tmp_path: Path) -> None:
    config = _config_file(
        tmp_path,
        {
            "us-edge": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "jurisdiction": "us"},
            "eu-edge": {"engine": "llamacpp", "model": "smollm2-135m-instruct", "jurisdiction": "eu-fr"},
            "other": {
                "engine": "llamacpp",
                "model": "s",
                "model_path": "/x.gguf",
                "sha256": "00" * 32,
                "jurisdiction": "eu",
            },
            "ollama": {"engine": "ollama", "url": "http://127.0.0.1:9/v1", "model": "m", "jurisdiction": "eu"},
        },
    )
    run = fake_run(tmp_path / "run", "eu-bot", ["eu"])
    refused = _add(config, run, "us-edge")
    assert refused.exit_code == 2
    assert "runs in 'us', but adapter 'eu-bot' was trained on data that may only be served in eu" in refused.output
    assert "Traceback" not in refused.output
    assert "are not the adapter's base" in _add(config, run, "other").output
    assert "does not load adapters" in _add(config, run, "ollama").output
    assert "no backend 'nope'" in _add(config, run, "nope").output
    ok = _add(config, run, "eu-edge")
    assert ok.exit_code == 0, ok.output
    (entry,) = Registry(tmp_path / "registry").adapters().values()
    assert entry.backends == ["eu-edge"] and entry.jurisdictions == ["eu"]
    assert (entry.folder / "adapter.gguf").read_bytes() == b"GGUF-test-eu-bot"  # a copy: the run may go
    removed = CliRunner().invoke(app, ["adapters", "remove", "eu-bot", "-c", str(config)])
    assert removed.exit_code == 0 and not Registry(tmp_path / "registry").adapters()


def test_routes_keep_only_backends_carrying_the_adapter_in_allowed_jurisdictions(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    for name, serving, backends in (("eu-bot", ["eu"], ["a-eu", "b-us"]), ("us-only", ["us"], ["a-eu"])):
        adapter = registry.add_run(fake_run(tmp_path / name, name, serving), name, "test")
        adapter.backends = backends
        registry.save(adapter)
    raw = {
        "backends": {
            "a-eu": {"engine": "vllm", "url": "http://127.0.0.1:9/v1", "model": "m", "jurisdiction": "eu-de"},
            "b-us": {"engine": "vllm", "url": "http://127.0.0.1:9/v1", "model": "m", "jurisdiction": "us"},
            "c-eu": {"engine": "vllm", "url": "http://127.0.0.1:9/v1", "model": "m2", "jurisdiction": "eu"},
        },
        "layers": {"edge": {"backends": ["b-us", "a-eu"], "fallback": ["c-eu"]}},
        "adapters": {"registry": str(tmp_path / "registry"), "aliases": {"bot": "edge:eu-bot"}},
    }
    router = Router(from_dict(raw), {}, health=None)  # type: ignore[arg-type]

    def resolve(model: str) -> Any:
        return router.resolve(ChatRequest(model=model, messages=[]))

    route = resolve("edge:eu-bot")
    assert (route.layer, route.replicas, route.fallback, route.adapter) == ("edge", ("a-eu",), (), "eu-bot")
    assert resolve("bot") == route
    assert resolve("a-eu:eu-bot").replicas == ("a-eu",)
    assert resolve("edge").adapter is None
    with pytest.raises(ResidencyViolation, match="may only be served in us"):
        resolve("edge:us-only")
    with pytest.raises(ModelNotFound, match="not registered on a backend of `c-eu`"):
        resolve("c-eu:eu-bot")
    with pytest.raises(ModelNotFound):
        resolve("edge:unknown")
    with pytest.raises(ModelNotFound, match="`nolayer` in `nolayer:eu-bot` is not a layer"):
        resolve("nolayer:eu-bot")
    ids = {model_id: info for model_id, info in router.adapters.models(router.layers)}
    # the layers the file leaves out are served by the same backends (config defaults)
    assert set(ids) == {"edge:eu-bot", "coding:eu-bot", "multimodal:eu-bot", "bot"}
    assert ids["bot"]["alias_of"] == "edge:eu-bot" and ids["edge:eu-bot"]["backends"] == ["a-eu"]


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).seen.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def test_vllm_and_sglang_get_their_adapter_endpoints(tmp_path: Path, recorder: str) -> None:
    config = _config_file(
        tmp_path,
        {
            "v": {"engine": "vllm", "url": recorder, "model": "base-model"},
            "s": {"engine": "sglang", "url": recorder, "model": "base-model"},
        },
    )
    run = fake_run(tmp_path / "run", "bot", ["local"])
    assert _add(config, run, "v", "--server-path", "/srv/adapters/bot").exit_code == 0
    assert _add(config, run, "s").exit_code == 0
    removed = CliRunner().invoke(app, ["adapters", "remove", "bot", "-b", "v", "-c", str(config)])
    assert removed.exit_code == 0, removed.output
    peft = str((tmp_path / "registry" / "bot" / "peft").resolve())
    assert _Recorder.seen == [
        ("/v1/load_lora_adapter", {"lora_name": "bot", "lora_path": "/srv/adapters/bot"}),
        ("/load_lora_adapter", {"lora_name": "bot", "lora_path": peft}),
        ("/v1/unload_lora_adapter", {"lora_name": "bot"}),
    ]
    assert Registry(tmp_path / "registry").get("bot").backends == ["s"]


def test_the_gateway_sends_vllm_the_adapter_name_and_lists_it(tmp_path: Path) -> None:
    with run_upstream(tmp_path) as upstream:
        backends = {"v1": upstream_backend(upstream, "plain-model")}
        config = _config_file(tmp_path, backends)
        assert _add(config, fake_run(tmp_path / "run", "bot", ["local"]), "v1", "--no-load").exit_code == 0
        with run_gateway(tmp_path, yaml.safe_load(config.read_text())) as gw:
            body = {"model": "edge:bot", "messages": [{"role": "user", "content": "hi"}]}
            r = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == "hello from bot"  # vLLM serves it as `bot`
            assert r.json()["model"] == "bot"
            models = [m["id"] for m in httpx.get(gw.base_url + "/models").json()["data"]]
            assert "edge:bot" in models
            missing = httpx.post(gw.base_url + "/chat/completions", json={**body, "model": "edge:other"})
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_bom_and_annex_iv_carry_the_adapters_lineage(tmp_path: Path) -> None:
    config = _config_file(tmp_path, {"edge-local": {"engine": "llamacpp", "model": "smollm2-135m-instruct"}})
    assert _add(config, fake_run(tmp_path / "run", "bot", ["local"]), "edge-local").exit_code == 0
    from owstack.compliance.annex_iv import render
    from owstack.compliance.bom import bom_json
    from owstack.config.load import load

    cfg = load(config)
    bom = json.loads(bom_json(cfg))
    (comp,) = [c for c in bom["components"] if c.get("bom-ref") == "adapter:bot"]
    assert comp["type"] == "machine-learning-model"
    assert comp["hashes"][0]["content"] == Registry(tmp_path / "registry").get("bot").sha256
    props = {p["name"]: p["value"] for p in comp["properties"]}
    assert props["owstack:data.0"] == f"file t.jsonl sha256:{'ab' * 32} rows=10 examples=10"
    assert props["owstack:recipe_sha256"] == "cd" * 32 and props["owstack:trained_by"] == "os-user:tester"
    assert props["owstack:serving_jurisdictions"] == "local" and props["owstack:metric.eval_loss"] == "0.25"
    section = render(cfg)["02-elements-and-development.md"]
    assert "| bot | smollm2-135m-instruct" in section and "t.jsonl (`abababababababab`, 10)" in section
    assert "Adapter `bot` (Art. 10)" in section
