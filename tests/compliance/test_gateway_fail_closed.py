"""A gateway whose audit log cannot be written refuses requests instead of serving them unrecorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from procs import Proc, upstream_backend


def test_unwritable_audit_log_refuses_requests(start_gateway: Any, fake_upstream: Proc, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the audit directory should be")
    config = {
        "backends": {"up": upstream_backend(fake_upstream, "fail-closed-check")},
        "audit": {"directory": str(blocker / "audit"), "keys_directory": str(tmp_path / "keys")},
    }
    before = httpx.get(fake_upstream.url + "/stats").json()["requests"].get("fail-closed-check", 0)
    with start_gateway(config, ready=False) as gw:
        ready = httpx.get(gw.url + "/readyz")
        assert ready.status_code == 503 and "audit" in ready.json()
        r = httpx.post(
            gw.base_url + "/chat/completions", json={"model": "edge", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "audit_unavailable"
        assert "not-a-directory" in r.json()["error"]["message"]
    after = httpx.get(fake_upstream.url + "/stats").json()["requests"].get("fail-closed-check", 0)
    assert after == before, "nothing may reach the upstream unrecorded"
