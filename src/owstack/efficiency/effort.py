"""Reasoning effort (`reasoning.effort`, `output_config.effort`) -> an owstack reasoning policy string.

The table is data (`efficiency/data/efforts.yaml`); an effort not in it is a 400 naming the field.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from owstack.errors import InvalidRequest


@cache
def efforts() -> dict[str, str]:
    text = resources.files("owstack.efficiency").joinpath("data/efforts.yaml").read_text()
    table = yaml.safe_load(text)["efforts"]
    return {str(k): str(v) for k, v in table.items()}


def policy_for_effort(effort: object, *, param: str) -> str | None:
    """The policy for an effort value (None when the client sent none)."""
    if effort is None:
        return None
    table = efforts()
    if not isinstance(effort, str) or effort not in table:
        raise InvalidRequest(f"{param}: unknown effort {effort!r}; use one of {', '.join(table)}", param=param)
    return table[effort]
