"""Which pickle imports are allowed, reviewed, or known to run code (`security/data/pickle_imports.yaml`).

An allowlist, not a blocklist: blocklist scanners were bypassed by every callable their authors had not
thought of. Anything outside the allowlist is at least `high`; classes of well-known ML libraries are
`medium` (their `__setstate__` runs library code, as any scikit-learn pickle does); modules and callables
known to execute code, touch files or the network, or load other pickles are `critical`, and so is any
name that walks through a dunder attribute (`OrderedDict.__init__.__globals__`, protocol 4 dotted names).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from owstack.security.data_files import load


@dataclass(frozen=True, slots=True)
class ImportPolicy:
    allow: dict[str, frozenset[str]]
    critical_modules: frozenset[str]
    critical_builtins: frozenset[str]
    critical_names: frozenset[tuple[str, str]]
    reviewed_packages: frozenset[str]


@cache
def policy() -> ImportPolicy:
    data = load("pickle_imports")
    return ImportPolicy(
        {str(m): frozenset(str(n) for n in names) for m, names in data["allow"].items()},
        frozenset(data["critical_modules"]),
        frozenset(data["critical_builtins"]),
        frozenset((str(m), str(n)) for m, n in data["critical_names"]),
        frozenset(data["reviewed_packages"]),
    )


def _prefixes(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def verdict(module: str, name: str) -> str | None:
    """None if `module.name` is on the allowlist, else "medium", "high" or "critical"."""
    p = policy()
    if name in p.allow.get(module, frozenset()):
        return None
    parts = name.split(".")
    if any(part.startswith("__") or not part for part in parts) or module.startswith("__main__"):
        return "critical"
    if module in ("builtins", "__builtin__") and parts[0] in p.critical_builtins:
        return "critical"
    if (module, name) in p.critical_names or (module, parts[0]) in p.critical_names:
        return "critical"
    if any(prefix in p.critical_modules for prefix in _prefixes(module)):
        return "critical"
    if module.split(".")[0] in p.reviewed_packages and len(parts) == 1 and name[:1].isupper():
        return "medium"
    return "high"
