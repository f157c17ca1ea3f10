"""The contenders: nginx directly, owstack (core and its variants) and LiteLLM's proxy.

All of them see the same two requests (`{"model": "edge", ...}` and `{"model": "coding", ..., "stream": true}`)
and the same upstream: the `edge` name goes to nginx's `/v1` (a fixed chat completion), the `coding` name to
its `/s/v1` (a fixed SSE stream). Direct access sends the same bodies straight to those two paths.

owstack variants (each one process, uvicorn + uvloop + httptools, as `owstack serve` runs it):

    owstack           metering off, audit off, no tenants (open mode on loopback)   the core figures
    owstack+metering  as core, with metering on (ledger in SQLite in the temp dir)  issue 3
    owstack+metering-sustained  as owstack+metering with `journal_max_rows: 0`: every batch moves into the
                      ledger's table as it arrives, as under a saturation longer than the journal holds
    owstack+metering-pg  as owstack+metering, the ledger in PostgreSQL (a database of its own, created
                      and dropped by the run, on the server at $OWSTACK_BENCH_PG, default
                      postgresql://postgres@127.0.0.1:5432/test); the server's own CPU is not the gateway's
    owstack+secure    as core, with tenants + an API key (keys, residency) and audit on   issue 6
    owstack+full      metering, keys, residency and audit together
    owstack+full-wal-nosync  as owstack+full with `metering.wal_sync: false`: the ledger's write-ahead log is
                      written before the response completes but not fsynced (a process crash loses nothing,
                      a host crash may), so a response waits for one fsync (the audit log's), not two
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gwbench import procs

REPO = Path(__file__).resolve().parents[2]
OWSTACK = REPO / ".venv" / "bin" / "owstack"
SRC = REPO / "src"
LITELLM = REPO / "bench" / ".venv-litellm" / "bin" / "litellm"
MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_BODY: dict[str, object] = {"model": "edge", "messages": MESSAGES}
STREAM_BODY: dict[str, object] = {"model": "coding", "messages": MESSAGES, "stream": True}
TENANT = "bench"

#: variant name -> (metering on, keys + residency + audit on)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "owstack": (False, False),
    "owstack+metering": (True, False),
    "owstack+metering-sustained": (True, False),
    "owstack+metering-pg": (True, False),
    "owstack+secure": (False, True),
    "owstack+full": (True, True),
    "owstack+full-wal-nosync": (True, True),
}


@dataclass
class Contender:
    name: str
    kind: str  # direct | owstack | litellm
    chat_url: str
    stream_url: str
    chat_body: dict[str, object] = field(default_factory=lambda: dict(CHAT_BODY))
    stream_body: dict[str, object] = field(default_factory=lambda: dict(STREAM_BODY))
    headers: dict[str, str] = field(default_factory=dict)
    server: procs.Server | None = None
    ready_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: run after the server stops (e.g. drop the variant's database)
    cleanup: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        while self.cleanup:
            self.cleanup.pop()()


#: variants' own `metering:` settings
METERING_OPTIONS: dict[str, dict[str, Any]] = {
    "owstack+metering-sustained": {"journal_max_rows": 0},
    "owstack+full-wal-nosync": {"wal_sync": False},
}

#: variants whose ledger is in PostgreSQL
PG_VARIANTS = frozenset({"owstack+metering-pg"})
PG_ADMIN_URL = os.environ.get("OWSTACK_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_database(name: str) -> tuple[str, Any]:
    """Create database `name` on the PG_ADMIN_URL server; returns its URL and a function that drops it."""
    import psycopg

    def admin(sql: str) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.encode())

    admin(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def owstack_command() -> list[str]:
    """This checkout's `owstack`: its .venv's script, or (a git worktree has no .venv of its own) the running
    Python with `-m owstack`. Run it with `owstack_env()`, which puts this checkout's src first, so that the
    gateway measured is the code beside this bench even when the interpreter's editable install points to
    another checkout."""
    return [str(OWSTACK)] if OWSTACK.exists() else [sys.executable, "-m", "owstack"]


def owstack_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    return env


def direct(upstream_port: int) -> Contender:
    base = f"http://127.0.0.1:{upstream_port}"
    return Contender(
        "direct",
        "direct",
        f"{base}/v1/chat/completions",
        f"{base}/s/v1/chat/completions",
        chat_body={"model": "bench-model", "messages": MESSAGES},
        stream_body={"model": "bench-model", "messages": MESSAGES, "stream": True},
    )


def owstack_config(
    workdir: Path, upstream_port: int, metering: bool, secure: bool, storage_url: str | None = None
) -> dict[str, Any]:
    up = f"http://127.0.0.1:{upstream_port}"
    backend = {"engine": "vllm", "model": "bench-model", "jurisdiction": "local", "health_check": True}
    config: dict[str, Any] = {
        "storage": {"url": storage_url or f"sqlite:///{workdir / 'owstack.db'}"},
        "backends": {
            "upstream": {**backend, "url": f"{up}/v1"},
            "upstream-sse": {**backend, "url": f"{up}/s/v1"},
        },
        "layers": {
            "edge": {"backends": ["upstream"]},
            "multimodal": {"backends": ["upstream"]},
            "coding": {"backends": ["upstream-sse"]},
        },
        "metering": {"enabled": metering},
        "audit": {
            "enabled": secure,
            "directory": str(workdir / "audit"),
            "keys_directory": str(workdir / "audit-keys"),
        },
    }
    if secure:
        config["tenants"] = {TENANT: {"jurisdictions": ["local"]}}
    return config


def create_key(config_path: Path, workdir: Path) -> str:
    """`owstack keys create` for the bench tenant; returns the key (printed once on stdout)."""
    proc = subprocess.run(
        [*owstack_command(), "keys", "create", "--tenant", TENANT, "--config", str(config_path), "--label", "bench"],
        cwd=workdir,
        env=owstack_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"owstack keys create failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().splitlines()[-1].strip()


def start_owstack(
    name: str, workdir: Path, upstream_port: int, cores: set[int] | None, extra_env: dict[str, str] | None = None
) -> Contender:
    metering, secure = VARIANTS[name]
    home = workdir / name.replace("+", "-")
    home.mkdir(parents=True, exist_ok=True)
    config_path = home / "owstack.yaml"
    cleanup = []
    storage_url = None
    if name in PG_VARIANTS:
        storage_url, drop = pg_database(f"owstack_bench_{os.getpid()}_{procs.free_port()}")
        cleanup.append(drop)
    config = owstack_config(home, upstream_port, metering, secure, storage_url)
    config["metering"].update(METERING_OPTIONS.get(name, {}))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    headers: dict[str, str] = {}
    if secure:
        headers["Authorization"] = f"Bearer {create_key(config_path, home)}"
    port = procs.free_port()
    cmd = [*owstack_command(), "serve", "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port)]
    env = owstack_env({**os.environ, **(extra_env or {})})
    try:
        server = procs.start(name.replace("+", "-"), cmd, workdir=home, cores=cores, env=env)
    except BaseException:
        for fn in cleanup:
            fn()
        raise
    base = f"http://127.0.0.1:{port}"
    contender = Contender(
        name,
        "owstack",
        f"{base}/v1/chat/completions",
        f"{base}/v1/chat/completions",
        headers=headers,
        server=server,
        cleanup=cleanup,
    )
    contender.info = {
        "config": str(config_path),
        "metering": metering,
        "ledger": "postgresql" if storage_url else "sqlite",
        "keys_residency_audit": secure,
    }
    contender.ready_s = procs.wait_http(server, f"{base}/readyz")
    contender.info["stages"] = stages_from_log(server.log.read_text(errors="replace"))
    return contender


def stages_from_log(text: str) -> list[str] | None:
    """The stage list the gateway logs when ready: `owstack ready (pid N): stages a -> b -> c`."""
    match = re.search(r"owstack ready \(pid \d+\): stages (.+)$", text, re.M)
    return [s.strip() for s in match.group(1).split("->")] if match else None


def litellm_config(upstream_port: int) -> dict[str, Any]:
    up = f"http://127.0.0.1:{upstream_port}"

    def entry(alias: str, base: str) -> dict[str, Any]:
        params = {"model": "openai/bench-model", "api_base": base, "api_key": "none"}
        return {"model_name": alias, "litellm_params": params}

    return {"model_list": [entry("edge", f"{up}/v1"), entry("coding", f"{up}/s/v1")]}


def litellm_env() -> dict[str, str]:
    """No database (no DATABASE_URL), the packaged price map instead of fetching it from the internet, and
    no master key: like owstack's core figures (open mode on loopback), every request is accepted without
    a key. Since 1.108 LiteLLM refuses to start that way unless told so explicitly."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DIRECT_URL", "LITELLM_MASTER_KEY")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
    return env


def start_litellm(workdir: Path, upstream_port: int, cores: set[int] | None) -> Contender:
    home = workdir / "litellm"
    home.mkdir(parents=True, exist_ok=True)
    config_path = home / "litellm.yaml"
    config_path.write_text(yaml.safe_dump(litellm_config(upstream_port), sort_keys=False))
    port = procs.free_port()
    cmd = [str(LITELLM), "--config", str(config_path), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    server = procs.start("litellm", cmd, workdir=home, cores=cores, env=litellm_env())
    base = f"http://127.0.0.1:{port}"
    contender = Contender("litellm", "litellm", f"{base}/v1/chat/completions", f"{base}/v1/chat/completions")
    contender.server = server
    contender.info = {"config": str(config_path), "version": litellm_version()}
    contender.ready_s = procs.wait_http(server, f"{base}/health/liveliness", timeout=300)
    return contender


def litellm_version() -> str | None:
    python = LITELLM.parent / "python"
    proc = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None


def owstack_version() -> str | None:
    proc = subprocess.run(
        [sys.executable, "-c", "import owstack; print(owstack.__version__)"],
        env=owstack_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None
