"""The ASGI entry point for uvicorn (`owstack.api.app:create_app`, a factory): the config path and listen
host travel in environment variables so that every worker process builds the same gateway."""

from __future__ import annotations

import os

from owstack.api.gateway import Gateway
from owstack.assembly import assemble
from owstack.cli.common import setup_logging
from owstack.config.load import load
from owstack.config.validate import validate

CONFIG_ENV = "OWSTACK_CONFIG"
HOST_ENV = "OWSTACK_HOST"
PORT_ENV = "OWSTACK_PORT"
#: with several workers, where they share their Prometheus numbers (a fresh directory per start)
METRICS_DIR_ENV = "OWSTACK_METRICS_DIR"
LOG_LEVEL_ENV = "OWSTACK_LOG_LEVEL"


def create_app() -> Gateway:
    path = os.environ.get(CONFIG_ENV) or None
    metrics_dir = os.environ.get(METRICS_DIR_ENV)
    overrides = {"metering": {"metrics_dir": metrics_dir}} if metrics_dir else None
    config = load(path, overrides=overrides)
    setup_logging(os.environ.get(LOG_LEVEL_ENV) or config.file.server.log_level)
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    port = int(os.environ[PORT_ENV]) if os.environ.get(PORT_ENV) else None
    validate(config, host=host, port=port)  # what `owstack serve` and `config check` run (config/validate.py)
    return assemble(config, host=host)
