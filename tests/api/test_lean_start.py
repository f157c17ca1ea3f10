"""The idle gateway loads only what its configuration uses (issue 2's idle-memory bar, docs/benchmarks.md):
a gateway with remote backends, no tenants, no ledger and no audit log answers chat without SQLAlchemy,
Alembic, numpy or Jinja2 in the process. Those load with the feature that needs them: the Responses store with
the first stored response, the guard's classifier with the first document or tool result it scans, the
console with the first page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

HEAVY = ("sqlalchemy", "alembic", "numpy", "jinja2")

SCRIPT = """
import asyncio, json, sys
from pathlib import Path
import httpx
from owstack.assembly import assemble
from owstack.config.load import load
from owstack.config.validate import validate

HEAVY = json.loads(sys.argv[2])

def heavy():
    return sorted(m for m in HEAVY if m in sys.modules)

async def main():
    checked = validate(load(sys.argv[1]), port=0)
    gw = assemble(checked.config, host=checked.host)
    await gw.startup()
    seen = {"started": heavy()}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw), base_url="http://127.0.0.1") as client:
            chat = {"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
            answer = await client.post("/v1/chat/completions", json=chat)
            seen["chat"], seen["chat_body"] = answer.status_code, answer.text
            seen["after_chat"] = heavy()
            seen["console"] = (await client.get("/ui/")).status_code
            seen["after_console"] = heavy()
    finally:
        await gw.shutdown()
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_an_idle_gateway_without_ledger_keys_or_audit_loads_no_sql_numpy_or_templates(tmp_path: Path) -> None:
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'owstack.db'}"},
        "backends": {"up": {"engine": "vllm", "url": "http://127.0.0.1:9/v1", "model": "m", "health_check": False}},
        "layers": {"edge": {"backends": ["up"]}},
        "metering": {"enabled": False},
        "audit": {"enabled": False},
    }
    path = tmp_path / "owstack.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["started"] == [], f"loaded at start: {seen['started']}"
    assert seen["chat"] in (502, 503), seen["chat_body"]
    assert seen["after_chat"] == []  # the upstream is unreachable (port 9)
    # the console is what loads them: proof that the check sees an import when there is one
    assert seen["console"] in (200, 303)
    assert {"sqlalchemy", "jinja2"} <= set(seen["after_console"])
