"""Read the security package's data files (`security/data/*.yaml`) once per process."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load(name: str) -> Any:
    """The parsed `security/data/<name>.yaml`."""
    text = resources.files("owstack.security").joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
