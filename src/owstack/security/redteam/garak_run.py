"""garak, the kept red-teaming engine, driven against the gateway's OpenAI-compatible endpoint.

garak is an optional extra (`pip install 'owstack[redteam]'`), or lives in its own virtualenv
(`--garak-python /path/to/venv/bin/python`, or `$OWSTACK_GARAK_PYTHON`), since it pins its own
transformers and torch. owstack runs `python -m garak --target_type openai.OpenAICompatible` with the
gateway's URL, the model and `max_tokens` in a generator option file and a run config (prompts per
probe, seed, no parallelism, reports in a temporary folder), then reads the `eval` records of garak's
`*.report.jsonl` (one per probe and detector: `passed`, `fails`, `total_evaluated`) into the same
per-probe shape as owstack's own probes, with a few example outputs that a detector flagged.

The default probes are the ones whose detectors are string matches (no detector model is downloaded):
prompt hijacking, encoded injections, latent injections in documents, markdown-image exfiltration and
DAN jailbreaks. garak's `--probes` spelling is still accepted by garak 0.17 (it prints a deprecation).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from owstack.security.redteam.runner import ProbeResult

DEFAULT_PROBES = (
    "promptinject.HijackHateHumans",
    "promptinject.HijackKillHumans",
    "encoding.InjectBase64",
    "encoding.InjectHex",
    "encoding.InjectROT13",
    "latentinjection.LatentInjectionReport",
    "latentinjection.LatentInjectionResume",
    "web_injection.MarkdownImageExfil",
    "dan.DanInTheWild",
)
PYTHON_ENV = "OWSTACK_GARAK_PYTHON"
_DONE = 2  # garak's attempt status once detectors have scored it


def python_for(python: str | None) -> str | None:
    """The interpreter to run garak with: `python`, else `$OWSTACK_GARAK_PYTHON`, else this one if it
    can import garak; None when garak is nowhere."""
    chosen = python or os.environ.get(PYTHON_ENV) or None
    if chosen is not None:
        return chosen if Path(chosen).is_file() else None
    return sys.executable if importlib.util.find_spec("garak") is not None else None


def available(python: str | None = None) -> bool:
    return python_for(python) is not None


def command(
    *,
    base_url: str,
    model: str,
    probes: tuple[str, ...],
    generations: int,
    prefix: Path,
    python: str | None,
    max_tokens: int = 32,
    max_prompts: int = 5,
    seed: int = 7,
) -> tuple[list[str], Path]:
    """The garak command line and the generator option file it reads (both files written here)."""
    generator = {"uri": base_url.rstrip("/") + "/", "model": model, "max_tokens": max_tokens}
    # `n` > 1 is not sent: garak asks once per generation
    generator["suppressed_params"] = ["n", "frequency_penalty", "presence_penalty"]
    option_file = prefix.with_suffix(".generator.json")
    option_file.write_text(json.dumps({"openai": {"OpenAICompatible": generator}}), encoding="utf-8")
    run_config: dict[str, Any] = {
        "run": {"soft_probe_prompt_cap": max_prompts, "generations": generations, "seed": seed},
        "system": {"parallel_attempts": False, "parallel_requests": False, "lite": True, "show_z": False},
        "reporting": {"report_dir": str(prefix.parent)},
    }
    config_file = prefix.with_suffix(".config.json")
    config_file.write_text(json.dumps(run_config), encoding="utf-8")
    cmd = [
        python or sys.executable,
        "-m",
        "garak",
        "--config",
        str(config_file),
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
        "--seed",
        str(seed),
        "--report_prefix",
        str(prefix),
    ]
    return cmd, option_file


def _examples(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per probe, up to three outputs a detector scored as a hit (>= 0.5)."""
    out: dict[str, list[str]] = {}
    for row in rows:
        if row.get("entry_type") != "attempt" or row.get("status") != _DONE:
            continue
        outputs = row.get("outputs") or []
        for detector, scores in (row.get("detector_results") or {}).items():
            name = f"garak:{row.get('probe_classname')}:{detector}"
            for i, score in enumerate(scores or []):
                if isinstance(score, (int, float)) and score >= 0.5 and i < len(outputs):
                    text = outputs[i].get("text") if isinstance(outputs[i], dict) else outputs[i]
                    shown = out.setdefault(name, [])
                    if len(shown) < 3:
                        shown.append(str(text or "")[:200])
    return out


def _no_output(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per probe, the generations of its scored attempts that have no output: garak records `None` when the
    endpoint answered with an error, which against owstack is the guard's or residency's refusal (a 4xx), or a
    call that failed (garak keeps no reason). Its `eval` records leave them out of `total_evaluated`."""
    out: dict[str, int] = {}
    for row in rows:
        if row.get("entry_type") != "attempt" or row.get("status") != _DONE:
            continue
        missing = sum(
            1 for o in row.get("outputs") or [] if o is None or (isinstance(o, dict) and o.get("text") is None)
        )
        if missing:
            probe = str(row.get("probe_classname"))
            out[probe] = out.get(probe, 0) + missing
    return out


def parse_report(path: Path) -> list[ProbeResult]:
    """garak's `eval` records as per-probe results (a hit is an output a detector failed); generations with no
    output are counted as attempts `blocked` (see `_no_output`), as owstack's own probes count a refusal."""
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    examples = _examples(rows)
    refused = _no_output(rows)
    results: dict[str, ProbeResult] = {}
    for row in rows:
        if row.get("entry_type") != "eval":
            continue
        name = f"garak:{row.get('probe')}:{row.get('detector')}"
        total = int(row.get("total_evaluated", row.get("total", 0)) or 0)
        passed = int(row.get("passed", 0) or 0)
        result = results.get(name)
        if result is None:
            blocked = refused.get(str(row.get("probe")), 0)
            result = results[name] = ProbeResult(
                name, f"garak probe {row.get('probe')}", attempts=blocked, blocked=blocked
            )
        result.attempts += total
        result.hits += max(total - passed, 0)
        result.examples = examples.get(name, [])[:3]
    return list(results.values())


def run(
    *,
    base_url: str,
    model: str,
    api_key: str | None,
    probes: tuple[str, ...] = DEFAULT_PROBES,
    generations: int = 1,
    python: str | None = None,
    max_tokens: int = 32,
    max_prompts: int = 5,
    timeout: float = 3600,
    keep: Path | None = None,
) -> list[ProbeResult]:
    """Run garak and return its per-probe results; raises RuntimeError when it fails. With `keep`,
    garak's own report (`garak.report.jsonl`) is copied there."""
    interpreter = python_for(python)
    if interpreter is None:
        raise RuntimeError("garak is not installed (pip install 'owstack[redteam]', or --garak-python)")
    workdir = Path(tempfile.mkdtemp(prefix="owstack-garak-"))
    try:
        prefix = workdir / "owstack"
        cmd, _ = command(
            base_url=base_url,
            model=model,
            probes=probes,
            generations=generations,
            prefix=prefix,
            python=interpreter,
            max_tokens=max_tokens,
            max_prompts=max_prompts,
        )
        env = {**os.environ, "OPENAICOMPATIBLE_API_KEY": api_key or "unused-on-loopback"}
        env.setdefault("XDG_DATA_HOME", str(workdir / "xdg"))  # garak's log and cache stay out of $HOME
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"garak did not finish within {timeout:.0f} s") from exc
        reports = sorted(workdir.glob("*.report.jsonl"))
        if done.returncode != 0 or not reports:
            tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()][-3:]
            raise RuntimeError(f"garak exited {done.returncode}: {' | '.join(tail)}")
        results = parse_report(reports[-1])
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(reports[-1], keep / "garak.report.jsonl")
        if not results:
            failed = [line.strip() for line in done.stdout.splitlines() if "failed to load" in line]
            why = "; ".join(failed[:3]) or f"probes {','.join(probes)}"
            raise RuntimeError(f"garak ran but evaluated nothing ({why}; garak's log says why)")
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
