"""Data files (models, hardware, API prices, recipes), each entry with its source and date.

`load_data(name)` reads `catalog/data/<name>.yaml` once per process. Typed accessors live beside it
(`catalog.models`, `catalog.hardware`, `catalog.prices`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load_data(name: str) -> Any:
    text = resources.files("owstack.catalog").joinpath("data", f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
