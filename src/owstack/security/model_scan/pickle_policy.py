"""Which pickle imports are allowed, reviewed, or known to run code (`security/data/pickle_imports.yaml`).

An allowlist, not a blocklist: blocklist scanners were bypassed by every callable their authors had not
thought of. Anything outside the allowlist is at least `high`; classes of well-known ML libraries are
`medium` (their `__setstate__` runs library code, as any scikit-learn pickle does); modules and callables
known to execute code, touch files or the network, or load other pickles are `critical`, and so is any
name that walks through a dunder attribute (`OrderedDict.__init__.__globals__`, protocol 4 dotted names).

A protocol 4 name is an attribute path, so the checks apply to the whole dotted path `module.name`, not
to the module alone: `torch` + `hub.load` is `torch.hub.load`, and `posixpath` + `os.system` reaches the
`os` module through an attribute (critical, as any path through a critical module or `builtins` is).
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
    reviewed_callables: frozenset[tuple[str, str]]
    torchscript_modules: frozenset[str]
    critical_last_names: frozenset[str]
    risky_steps: frozenset[str]


@cache
def policy() -> ImportPolicy:
    data = load("pickle_imports")
    return ImportPolicy(
        {str(m): frozenset(str(n) for n in names) for m, names in data["allow"].items()},
        frozenset(data["critical_modules"]),
        frozenset(data["critical_builtins"]),
        frozenset((str(m), str(n)) for m, n in data["critical_names"]),
        frozenset(data["reviewed_packages"]),
        frozenset((str(m), str(n)) for m, n in data["reviewed_callables"]),
        frozenset(data["torchscript_modules"]),
        frozenset(data["critical_last_names"]),
        frozenset(data["risky_steps"]),
    )


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


_BUILTIN_MODULES = frozenset({"builtins", "__builtin__"})


def verdict(module: str, name: str) -> str | None:
    """None if `module.name` is on the allowlist, else "medium", "high" or "critical"."""
    p = policy()
    if name in p.allow.get(module, frozenset()):
        return None
    if (module, name) in p.reviewed_callables:
        return "medium"
    parts = name.split(".")
    path = f"{module}.{name}"
    if module.split(".")[0] in p.torchscript_modules and "__" not in name and all(parts):
        return "medium"  # a TorchScript class: Python's own import of `__torch__` fails
    if any(part.startswith("__") or not part for part in parts) or module.startswith("__main__"):
        return "critical"
    if module in _BUILTIN_MODULES and parts[0] in p.critical_builtins:
        return "critical"
    steps = path.split(".")
    for i in range(1, len(steps)):
        if (".".join(steps[:i]), steps[i]) in p.critical_names:
            return "critical"
    if any(prefix in p.critical_modules for prefix in _prefixes(path)):
        return "critical"
    if any(step in p.critical_modules or step in _BUILTIN_MODULES for step in steps[len(module.split(".")) :]):
        return "critical"  # a module reached through an attribute: posixpath.os.system
    if steps[-1] in p.critical_last_names:
        return "critical"  # a loader, writer, command runner or importer by its name: torch.save, X.from_file
    package, *inner = module.split(".")
    if package in p.reviewed_packages and len(parts) == 1 and name[:1].isupper():
        return "high" if any(step in p.risky_steps for step in inner) else "medium"
    return "high"
