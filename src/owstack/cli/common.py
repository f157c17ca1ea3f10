"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error (no traceback) and exit: 2 for usage errors, 1 for failures."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("owstack")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
