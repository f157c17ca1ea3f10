"""How an owstack process logs: one stderr handler on the `owstack` logger, at the level asked for.

Both the CLI (`owstack serve`, `owstack console`, `owstack mcp`) and the ASGI entry point that uvicorn
loads (api/app.py) set it up, so it stands here rather than in either.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("owstack")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
