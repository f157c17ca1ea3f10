"""`owstack serve`: run the gateway."""

from __future__ import annotations

import math
import os
from pathlib import Path

import typer

from owstack.cli.common import LogLevel
from owstack.logs import setup_logging


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        dir_okay=False,
        help="Config file (YAML). Default: the embedded model for every layer, data in the data directory.",
    ),
    host: str | None = typer.Option(None, help="Address to listen on. [default: server.host, else 127.0.0.1]"),
    port: int | None = typer.Option(
        None, min=0, max=65535, help="Port (0: any free one). [default: server.port, else 8000]"
    ),
    probe_port: int | None = typer.Option(
        None,
        min=0,
        max=65535,
        help="Port of the operations listener: /healthz, /readyz, /metrics only, outside the connection caps. "
        "[default: server.probe_port, else none]",
    ),
    workers: int | None = typer.Option(None, min=1, max=64, help="Worker processes. [default: server.workers, else 1]"),
    log_level: LogLevel | None = typer.Option(None, help="Log level. [default: server.log_level, else info]"),
) -> None:
    """Run the OpenAI- and Anthropic-compatible gateway.

    The config is checked first, exactly as `owstack config check` does: a problem is printed with its
    field and the gateway does not start (exit 2)."""
    from owstack.config.load import load
    from owstack.config.validate import validate

    overrides = {"server": {"probe_port": probe_port}} if probe_port is not None else None
    cfg = load(config, overrides=overrides)  # a ConfigError becomes one `error:` line and exit 2 (cli.common.RootGroup)
    server = cfg.file.server
    host = host or server.host
    port = server.port if port is None else port
    workers = workers or server.workers
    level = log_level or server.log_level
    checked = validate(cfg, host=host, port=port)
    setup_logging(level)
    for note in checked.notes:
        typer.echo(f"owstack: {note}", err=True)
    os.environ["OWSTACK_CONFIG"] = str(config.resolve()) if config else ""
    os.environ["OWSTACK_HOST"] = host
    os.environ["OWSTACK_PORT"] = str(port)
    os.environ["OWSTACK_LOG_LEVEL"] = level
    os.environ["OWSTACK_WORKERS"] = str(workers)
    if probe_port is not None:
        os.environ["OWSTACK_PROBE_PORT"] = str(probe_port)
    else:
        os.environ.pop("OWSTACK_PROBE_PORT", None)
    if workers > 1 and not cfg.file.metering.metrics_dir:
        import tempfile

        # every worker's /metrics reports the sum of all workers, through files in this directory
        os.environ["OWSTACK_METRICS_DIR"] = tempfile.mkdtemp(prefix="owstack-metrics-")
    import uvicorn

    typer.echo(
        f"owstack: serving {cfg.source} on http://{_hostport(host, port)} "
        f"({workers} worker{'s' if workers > 1 else ''})"
        + (
            f"; probes on http://{_hostport(server.probe_host or host, server.probe_port)}"
            if server.probe_port is not None
            else ""
        ),
        err=True,
    )
    from owstack.api.proxy import Trusted
    from owstack.api.server import GuardedHttpToolsProtocol, ProxiedHttpToolsProtocol, raise_fd_limit

    raise_fd_limit()  # connection limits and the file-descriptor reserve: owstack.api.server
    # X-Forwarded-For and a PROXY header are believed from `server.trusted_proxies` only (none: from no one)
    trusted = Trusted(server.trusted_proxies).as_uvicorn()
    uvicorn.run(
        "owstack.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=ProxiedHttpToolsProtocol if server.proxy_protocol else GuardedHttpToolsProtocol,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_keep_alive=cfg.file.server.limits.idle_timeout_s,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        server_header=False,
        date_header=False,
        log_level=level,
        timeout_graceful_shutdown=math.ceil(server.shutdown_grace_s),  # requests in flight at SIGTERM (api/app.py)
    )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
