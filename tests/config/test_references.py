"""References between config sections, checked in one place (config/references.py): each dangling one is
one line naming its field, every one of them reported at once, and `owstack config check` exits 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from owstack.cli import app
from owstack.config.load import from_dict
from owstack.config.references import problems
from owstack.errors import ConfigError

VLLM = {"engine": "vllm", "url": "http://gpu-1:8001/v1", "model": "m"}
ONE = {"backends": {"a": VLLM}}
LAYERS = "the layers are coding, multimodal, edge"
MCP_SERVER = {"command": ["true"]}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("layer name", {**ONE, "layers": {"vision": {"backends": ["a"]}}}, f"layers.vision: unknown layer; {LAYERS}"),
    (
        "layer backend",
        {**ONE, "layers": {"coding": {"backends": ["b"]}}},
        "layers.coding.backends: unknown backend 'b' (backends: a)",
    ),
    ("layer without backends", {**ONE, "layers": {"coding": {"backends": []}}}, "layers.coding.backends: needs at"),
    (
        "fallback",
        {**ONE, "layers": {"coding": {"backends": ["a"], "fallback": ["cloud"]}}},
        "layers.coding.fallback: unknown backend 'cloud' (backends: a)",
    ),
    ("auto rule", {"routing": {"auto": {"images": "gpu"}}}, "routing.auto.images: 'gpu' is not a layer"),
    ("counterfactual", {"counterfactual": {"vision": "gpt-5.4"}}, f"counterfactual.vision: unknown layer; {LAYERS}"),
    (
        "tenant layer",
        {"tenants": {"t1": {"layers": ["vision"]}}},
        f"tenants.t1.layers: unknown layer 'vision'; {LAYERS}",
    ),
    ("tenant without layers", {"tenants": {"t1": {"layers": []}}}, "tenants.t1.layers: needs at least one layer"),
    (
        "reasoning layer",
        {"reasoning": {"layers": {"gpu": "off"}}},
        f"reasoning.layers.gpu: unknown layer 'gpu'; {LAYERS}",
    ),
    (
        "proxy server",
        {"mcp": {"servers": {"files": MCP_SERVER}, "proxy": {"servers": {"fils": {}}}}},
        "mcp.proxy.servers.fils: not a server in mcp.servers (files)",
    ),
    (
        "mcp tenant",
        {"tenants": {"acme": {}}, "mcp": {"tenants": {"acne": {"allow": ["files.*"]}}}},
        "mcp.tenants.acne: not a tenant (tenants: acme)",
    ),
    (
        "mcp tenant in open mode",
        {"mcp": {"tenants": {"acme": {}}}},
        "mcp.tenants.acme: not a tenant (with no tenants configured, the one tenant is 'default')",
    ),
    (
        "proxy tenant",
        {"tenants": {"acme": {}}, "mcp": {"proxy": {"tenants": {"beta": {}}}}},
        "mcp.proxy.tenants.beta: not a tenant (tenants: acme)",
    ),
]


@pytest.mark.parametrize(("raw", "line"), [(raw, line) for _, raw, line in CASES], ids=[c[0] for c in CASES])
def test_each_dangling_reference_is_one_line_naming_its_field(raw: dict[str, Any], line: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(raw, source="test.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid config (test.yaml):"
    assert [x for x in lines[1:] if x.startswith(f"  {line}")], str(info.value)


def test_every_dangling_reference_is_reported_at_once() -> None:
    raw = {
        **ONE,
        "layers": {"coding": {"backends": ["b"], "fallback": ["c"]}},
        "counterfactual": {"vision": "gpt-5.4"},
        "tenants": {"t1": {"layers": ["gpu"]}},
    }
    with pytest.raises(ConfigError) as info:
        from_dict(raw)
    fields = [line.split(":")[0].strip() for line in str(info.value).splitlines()[1:]]
    assert fields == ["layers.coding.backends", "layers.coding.fallback", "counterfactual.vision", "tenants.t1.layers"]


def test_resolving_references_pass() -> None:
    config = from_dict(
        {
            "backends": {"a": VLLM, "b": VLLM},
            "layers": {"coding": {"backends": ["a"], "fallback": ["b"]}},
            "counterfactual": {"coding": "gpt-5.4"},
            "tenants": {"acme": {"layers": ["coding", "edge"]}},
            "reasoning": {"layers": {"edge": "off"}},
            "mcp": {
                "servers": {"files": MCP_SERVER},
                "tenants": {"acme": {"allow": ["files.*"]}},
                "proxy": {"servers": {"files": {}}, "tenants": {"acme": {}}},
            },
        }
    )
    assert problems(config.file) == []
    assert from_dict({"mcp": {"tenants": {"default": {"allow": ["files.*"]}}}}).file.mcp.tenants


@pytest.mark.parametrize(("raw", "line"), [(raw, line) for _, raw, line in CASES[::3]], ids=[c[0] for c in CASES[::3]])
def test_config_check_exits_2_naming_the_field(tmp_path: Path, raw: dict[str, Any], line: str) -> None:
    path = tmp_path / "owstack.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert line in result.output and "Traceback" not in result.output
