"""The module-wide MCP stack fixture; the helpers live in `mcp_stack.py` (test files import them from there:
`conftest` is a module name every test folder shares)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest
from mcp_stack import SERVER, McpStack, http_upstream, owstack

from procs import run_gateway


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpStack]:
    tmp = tmp_path_factory.mktemp("mcp")
    local_state = tmp / "local"
    local_state.mkdir()
    with http_upstream(tmp, "remote") as remote, http_upstream(tmp, "evil") as evil:
        config = {
            "storage": {"url": f"sqlite:///{tmp / 'owstack.db'}"},
            "audit": {"directory": str(tmp / "audit"), "keys_directory": str(tmp / "audit-keys")},
            "metering": {"flush_interval_ms": 50},
            "tenants": {"acme": {}, "beta": {}, "gamma": {"requests_per_minute": 3}},
            "mcp": {
                "servers": {
                    "local": {"command": [sys.executable, SERVER, "stdio", str(local_state)], "env": {"FOO": "bar"}},
                    "remote": {"url": remote.url, "allow_networks": ["127.0.0.1/32"]},
                    "remote25": {"url": remote.url, "allow_networks": ["127.0.0.1/32"], "protocol": "legacy"},
                    "evil": {"url": f"http://evil.test:{evil.port}/mcp"},
                    "meta": {"url": "http://metadata.test/mcp"},
                },
                "resolve": {"evil.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]},
                "tenants": {
                    "acme": {"allow": ["local.*", "remote.*", "remote25.*"], "results": "block", "secrets": "block"},
                    "beta": {"allow": ["remote.echo"], "results": "redact", "secrets": "redact"},
                    "gamma": {"allow": ["remote.echo"]},
                },
                "call_timeout_s": 20,
                "restart_s": 0.2,
            },
        }
        import yaml

        config_path = tmp / "owstack.yaml"
        config_path.write_text(yaml.safe_dump(config))
        keys = {}
        for tenant in ("acme", "beta", "gamma"):
            out = owstack("keys", "create", "--tenant", tenant, "--config", str(config_path), "--json")
            assert out.returncode == 0, out.stderr

            keys[tenant] = json.loads(out.stdout)["key"]
        env = {"OWSTACK_TEST_SECRET": "s3cr3t-value-never-passed"}
        with run_gateway(tmp, config, env=env) as gw:
            yield McpStack(gw, remote, evil, local_state, keys, config_path)
