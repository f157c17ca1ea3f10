"""Human token volumes: "100M", "1.5B", "250k", "1e8", "100,000,000", "2T" -> float."""

from __future__ import annotations

import math
import re

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)

EXAMPLES = "e.g. 100M, 1.5B, 250k or 1e8"


def parse_quantity(text: str | float | int) -> float:
    """A non-negative-or-not number with an optional k/M/B/T suffix; `ValueError` when it is not one."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number; use {EXAMPLES}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _QUANTITY.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a number; use {EXAMPLES}")
        number, suffix = match.groups()
        value = float(number.replace(",", "").replace("_", "")) * _SUFFIX[suffix.lower()]
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number; use {EXAMPLES}")
    return value


def format_quantity(value: float) -> str:
    """1.5e9 -> "1.5B", 1e8 -> "100M", 2.5e5 -> "250k"."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"
