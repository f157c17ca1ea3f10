"""Reading a YAML file the user named (a config, a scenario, a recipe): every way it can be unusable becomes one
error naming the file, never a traceback.

    read_mapping(path, "config file")                      -> dict (ConfigError otherwise)
    read_mapping(path, "recipe", error=RecipeError)        -> the caller's own error type

Refused, each with its reason: a file that cannot be read (missing, a directory, a name too long, no
permission), one larger than `MAX_BYTES`, text that is not UTF-8, invalid YAML, nesting deeper than
`MAX_DEPTH` (PyYAML's composer recurses once per level: a few thousand brackets exhaust Python's stack) or
referring to itself, aliases that expand past `MAX_VALUES` values, and a top level that is not a mapping.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from owstack.errors import ConfigError

#: larger than any configuration file (the starter config is a few KB)
MAX_BYTES = 16 * 1024 * 1024
#: deeper than any configuration needs (the schema's deepest field is a few levels down)
MAX_DEPTH = 64
#: values once every alias is expanded ("billion laughs": a few lines of anchors that expand to billions)
MAX_VALUES = 1_000_000


def read_mapping(
    path: str | Path, what: str, *, error: type[Exception] = ConfigError, hint: str = ""
) -> dict[str, Any]:
    """The file's top-level mapping; `error` naming the file and the reason otherwise. `hint` ends the
    message of a top level that is not a mapping (e.g. "(name, base, data, ...)")."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {p}: {exc.strerror or exc}") from None
    except ValueError as exc:  # an embedded NUL in the name
        raise error(f"cannot read {what} {p!r}: {exc}") from None
    if len(data) > MAX_BYTES:
        raise error(f"{p}: a {what} larger than {MAX_BYTES // (1024 * 1024)} MiB is not read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p} is not UTF-8 text (byte {exc.start}): save the {what} as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{p} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise error(f"{p}: the {what} nests deeper than {MAX_DEPTH} levels") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{p}: the top level must be a mapping{' ' + hint if hint else ''}")
    depth, size = _shape(raw)
    if depth > MAX_DEPTH:
        raise error(f"{p}: the {what} nests deeper than {MAX_DEPTH} levels (or refers to itself)")
    if size > MAX_VALUES:
        raise error(f"{p}: the {what} expands to more than {MAX_VALUES:,} values (YAML aliases)")
    return raw


def _shape(value: Any) -> tuple[float, float]:
    """(how deeply mappings and lists nest in `value`, how many values it holds with every YAML alias
    expanded): iterative, each shared node measured once, a node that contains itself infinitely deep."""
    done: dict[int, tuple[float, float]] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if key in done:
            continue
        items = list(node.values()) + list(node) if isinstance(node, dict) else node
        if children_done:
            open_.discard(key)
            depth, size = 1.0, 1.0
            for child in items:
                d, n = done.get(id(child), (1.0, 1.0)) if isinstance(child, dict | list) else (1.0, 1.0)
                depth, size = max(depth, d + 1), size + n
            done[key] = (depth, size)
            continue
        if key in open_:  # an alias inside its own anchor: a recursive structure
            return math.inf, math.inf
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in items if isinstance(child, dict | list))
    return done.get(id(value), (1.0, 1.0))
