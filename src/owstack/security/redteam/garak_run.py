"""garak, the kept red-teaming engine, driven against the gateway's OpenAI-compatible endpoint.

garak is an optional extra (`pip install 'owstack[redteam]'`); it can also live in its own virtualenv
(`--garak-python /path/to/venv/bin/python`), since it pins its own transformers and torch. owstack runs
`python -m garak --target_type openai.OpenAICompatible` with the gateway's URL and key in a generator
option file, then reads the `eval` records of garak's `*.report.jsonl` (one per probe and detector:
`passed`, `fails`, `total_evaluated`) into the same per-probe shape as owstack's own probes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from owstack.security.redteam.runner import ProbeResult

DEFAULT_PROBES = ("promptinject", "latentinjection", "encoding", "xss", "dan.DanInTheWild")


def available(python: str | None = None) -> bool:
    if python is not None:
        return Path(python).is_file()
    return importlib.util.find_spec("garak") is not None


def command(
    *, base_url: str, model: str, probes: tuple[str, ...], generations: int, prefix: Path, python: str | None
) -> tuple[list[str], Path]:
    """The garak command line and the generator option file it reads (written by this function)."""
    options = {"openai": {"OpenAICompatible": {"uri": base_url.rstrip("/") + "/", "model": model, "max_tokens": 64}}}
    option_file = prefix.with_suffix(".generator.json")
    option_file.write_text(json.dumps(options), encoding="utf-8")
    cmd = [
        python or sys.executable,
        "-m",
        "garak",
        "--target_type",
        "openai.OpenAICompatible",
        "--target_name",
        model,
        "--generator_option_file",
        str(option_file),
        "--probes",
        ",".join(probes),
        "--generations",
        str(generations),
        "--report_prefix",
        str(prefix),
    ]
    return cmd, option_file


def parse_report(path: Path) -> list[ProbeResult]:
    """garak's `eval` records as per-probe results (a hit is an output a detector failed)."""
    results: dict[str, ProbeResult] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(row, dict) or row.get("entry_type") != "eval":
            continue
        name = f"garak:{row.get('probe')}:{row.get('detector')}"
        total = int(row.get("total_evaluated", row.get("total", 0)) or 0)
        passed = int(row.get("passed", 0) or 0)
        result = results.setdefault(name, ProbeResult(name, f"garak probe {row.get('probe')}"))
        result.attempts += total
        result.hits += max(total - passed, 0)
    return list(results.values())


def run(
    *,
    base_url: str,
    model: str,
    api_key: str | None,
    probes: tuple[str, ...] = DEFAULT_PROBES,
    generations: int = 1,
    python: str | None = None,
    timeout: float = 3600,
) -> list[ProbeResult]:
    """Run garak and return its per-probe results; raises RuntimeError when it fails."""
    workdir = Path(tempfile.mkdtemp(prefix="owstack-garak-"))
    prefix = workdir / "owstack"
    cmd, _ = command(
        base_url=base_url, model=model, probes=probes, generations=generations, prefix=prefix, python=python
    )
    env = {**os.environ, "OPENAICOMPATIBLE_API_KEY": api_key or "unused-on-loopback"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    reports = sorted(workdir.glob("*.report.jsonl")) or sorted(
        Path.home().glob(".local/share/garak/garak_runs/owstack*.report.jsonl")
    )
    if done.returncode != 0 or not reports:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"garak exited {done.returncode}: {' | '.join(tail)}")
    return parse_report(reports[-1])
