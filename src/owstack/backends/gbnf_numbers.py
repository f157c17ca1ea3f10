"""Bounded integers and numbers as GBNF: decimal digit patterns for a range, without leading zeros.

`int_range(3, 250)` is `( [3-9] | [1-9] [0-9]{1} | "1" [0-9]{2} | "2" [0-4] [0-9]{1} | "25" [0] )`, in effect.
Non-integer numbers take whole-number bounds only (`schema_check` refuses others on the GBNF profile): a
value is an integer part in range followed by an optional fraction, or the upper bound itself.
"""

from __future__ import annotations

from owstack.backends.gbnf_rules import Rules, literal

MAX_DIGITS = 16
_FRACTION = '( "." [0-9]{1,16} )?'
_ZERO_FRACTION = '( "." "0"{1,16} )?'


def int_range(lo: int | None, hi: int | None) -> str:
    """Integers in [lo, hi]; None leaves that side open (up to 16 digits)."""
    alternatives = []
    if lo is None or lo < 0:
        magnitude_lo = 1 if hi is None or hi >= 0 else -hi
        alternatives.append('"-" ' + natural(magnitude_lo, None if lo is None else -lo))
    if hi is None or hi >= 0:
        alternatives.append(natural(max(lo, 0) if lo is not None else 0, hi))
    return _alt(alternatives)


def number_range(lo: int | None, hi: int | None, rules: Rules) -> str:
    """Decimal numbers in [lo, hi] for whole-number bounds (no exponent)."""
    alternatives = []
    if hi is None or hi >= 0:
        base = max(lo, 0) if lo is not None else 0
        if hi is None:
            alternatives.append(f"{rules.add(natural(base, None))} {_FRACTION}")
        else:
            if base <= hi - 1:
                alternatives.append(f"{rules.add(natural(base, hi - 1))} {_FRACTION}")
            alternatives.append(f"{literal(str(hi))} {_ZERO_FRACTION}")
    if lo is None or lo < 0:
        magnitude_lo = -hi if hi is not None and hi < 0 else 0
        if lo is None:
            alternatives.append(f'"-" {rules.add(natural(magnitude_lo, None))} {_FRACTION}')
        else:
            if magnitude_lo <= -lo - 1:
                alternatives.append(f'"-" {rules.add(natural(magnitude_lo, -lo - 1))} {_FRACTION}')
            alternatives.append(f'"-" {literal(str(-lo))} {_ZERO_FRACTION}')
    return _alt(alternatives)


def natural(lo: int, hi: int | None) -> str:
    """Non-negative integers in [lo, hi], written without leading zeros."""
    top = hi if hi is not None else 10**MAX_DIGITS - 1
    if lo > top:
        raise ValueError("empty integer range")
    out: list[str] = []
    first_len, last_len = len(str(lo)), len(str(top))
    for digits in range(first_len, last_len + 1):
        a = max(lo, 10 ** (digits - 1) if digits > 1 else 0)
        b = min(top, 10**digits - 1)
        if hi is None and digits > first_len:
            out.append(f"[1-9] [0-9]{{{digits - 1},{MAX_DIGITS - 1}}}")
            break
        out += _same_length(str(a), str(b))
    return _alt(out)


def _same_length(a: str, b: str) -> list[str]:
    if a == b:
        return [literal(a)]
    n = len(a)
    if n == 1:
        return [f"[{a}-{b}]"]
    if a[0] == b[0]:
        return [f"{literal(a[0])} {p}" for p in _same_length(a[1:], b[1:])]
    out = []
    low_full = a[1:] == "0" * (n - 1)
    high_full = b[1:] == "9" * (n - 1)
    first = int(a[0]) + (0 if low_full else 1)
    last = int(b[0]) - (0 if high_full else 1)
    if not low_full:
        out += [f"{literal(a[0])} {p}" for p in _same_length(a[1:], "9" * (n - 1))]
    if first <= last:
        out.append(f"[{first}-{last}] [0-9]{{{n - 1}}}")
    if not high_full:
        out += [f"{literal(b[0])} {p}" for p in _same_length("0" * (n - 1), b[1:])]
    return out


def _alt(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "( " + " | ".join(parts) + " )"
