"""`owstack serve`: run the gateway."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from owstack.cli.common import fail, setup_logging


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Config file (YAML). Default: the embedded model for every layer."
    ),
    host: str | None = typer.Option(None, help="Address to listen on [default: 127.0.0.1, or server.host]."),
    port: int | None = typer.Option(None, help="Port [default: 8000, or server.port]."),
    workers: int | None = typer.Option(None, min=1, max=64, help="Worker processes [default: 1, or server.workers]."),
    log_level: str | None = typer.Option(None, help="debug, info, warning or error [default: info]."),
) -> None:
    """Run the OpenAI-compatible gateway."""
    from owstack.config.load import load
    from owstack.errors import ConfigError

    try:
        cfg = load(config)
    except ConfigError as exc:
        fail(str(exc), code=2)
    server = cfg.file.server
    host = host or server.host
    port = server.port if port is None else port
    workers = workers or server.workers
    level = log_level or server.log_level
    setup_logging(level)
    _check_exposure(cfg, host)
    _verify_models(cfg)
    os.environ["OWSTACK_CONFIG"] = str(config.resolve()) if config else ""
    os.environ["OWSTACK_HOST"] = host
    os.environ["OWSTACK_LOG_LEVEL"] = level
    if workers > 1 and not cfg.file.metering.metrics_dir:
        import tempfile

        # every worker's /metrics reports the sum of all workers, through files in this directory
        os.environ["OWSTACK_METRICS_DIR"] = tempfile.mkdtemp(prefix="owstack-metrics-")
    import uvicorn

    typer.echo(
        f"owstack: serving {cfg.source} on http://{_hostport(host, port)} "
        f"({workers} worker{'s' if workers > 1 else ''})",
        err=True,
    )
    from owstack.api.server import GuardedHttpToolsProtocol, raise_fd_limit

    raise_fd_limit()  # connection limits and the file-descriptor reserve: owstack.api.server
    uvicorn.run(
        "owstack.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        timeout_keep_alive=cfg.file.server.limits.idle_timeout_s,  # type: ignore[arg-type]
        lifespan="on",
        access_log=False,
        server_header=False,
        date_header=False,
        log_level=level,
        timeout_graceful_shutdown=30,
    )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_exposure(cfg: object, host: str) -> None:
    """Keys are required off loopback; the open embedded default is for this machine only."""
    from owstack.config.load import Config

    assert isinstance(cfg, Config)
    try:
        from owstack.tenancy import open_mode_allowed
    except ImportError:
        if not is_loopback(host) and not cfg.file.tenants:
            fail(
                f"refusing to listen on {host} without API keys: define tenants and create keys (owstack keys create)",
                code=2,
            )
        return
    allowed, sentence = open_mode_allowed(cfg, host)
    if cfg.file.tenants:
        return
    if not allowed:
        fail(sentence, code=2)
    typer.echo(f"owstack: {sentence}", err=True)


def _verify_models(cfg: object) -> None:
    """Pinned model digests are checked before listening: a mismatch names the file and both digests."""
    from owstack.backends.llamacpp import LlamaCppBackend
    from owstack.config.load import Config
    from owstack.errors import ConfigError

    assert isinstance(cfg, Config)
    for name, section in cfg.file.backends.items():
        if section.engine != "llamacpp":
            continue
        try:
            LlamaCppBackend.from_section(name, section).verify()
        except ConfigError as exc:
            fail(f"refusing to start: {exc}", code=1)
