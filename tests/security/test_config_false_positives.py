"""Classes of config that popular, well-kept repositories commit (found by scanning them), each beside the
attack of the same shape, which must still be found: a dev container's own firewall capabilities, skills that
document commands and credentials, a Claude Code plugin kept in the repository, a hook that runs a pinned tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from owstack.security.config_scan import scan_path
from owstack.security.findings import RANK


def _worst(root: Path, rule: str, file: str) -> str | None:
    found = [f for f in scan_path(root) if f.rule == rule and f.file == file]
    return max((f.severity for f in found), key=RANK.__getitem__, default=None)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("run_args", "severity"),
    [
        (["--cap-add=NET_ADMIN", "--cap-add=NET_RAW"], "low"),  # the container's own firewall
        (["--cap-add", "SYS_PTRACE"], "low"),  # debuggers
        (["--cap-add=NET_ADMIN", "--network=host"], "high"),  # now the host's network
        (["--cap-add=SYS_ADMIN"], "high"),
        (["--cap-add=NET_ADMIN", "--cap-add=AUDIT_WRITE"], "medium"),
    ],
)
def test_devcontainer_capabilities(tmp_path: Path, run_args: list[str], severity: str) -> None:
    _write(tmp_path, ".devcontainer/devcontainer.json", json.dumps({"image": "debian", "runArgs": run_args}, indent=1))
    found = [f for f in scan_path(tmp_path) if f.rule == "OWS-DC-003"]
    assert max(RANK[f.severity] for f in found) == RANK[severity], [(f.severity, f.message) for f in found]
    assert {f.line for f in found if "capabilities" in f.message} == {3}  # the `runArgs` line, not line 1
