"""The OPSDC teacher instructions (v1 uniform, v2 difficulty-aware), read from `data/instructions.yaml`."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

VERSIONS: tuple[str, ...] = ("v1", "v2")


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("owstack.efficiency").joinpath("data/instructions.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def instruction(version: str = "v1") -> str:
    """The full teacher system message for `version`: the instruction, then the answer-format suffix."""
    entries = _data()["instructions"]
    if version not in entries:
        raise KeyError(f"unknown concise instruction {version!r}; the versions are {', '.join(VERSIONS)}")
    return f"{entries[version]['text'].strip()}\n{_data()['suffix'].strip()}"


def source(version: str = "v1") -> str:
    entry = _data()["instructions"][version]
    return f"{entry['source']} ({entry['date']})"
