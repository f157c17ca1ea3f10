"""Where relative paths in a config point: the config file's folder, or the data directory.

A gateway started from another directory must find the same keys, ledger and audit log as the
`owstack keys create` run next to its config, so every field marked `FilePath` or `DatabaseURL`
(owstack.config.base) is made absolute when the file is loaded. With no config file, relative paths resolve
against the data directory:

    $OWSTACK_DATA_DIR, else $XDG_DATA_HOME/owstack, else ~/.local/share/owstack
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel

from owstack.config.base import Location

DATA_DIR_ENV = "OWSTACK_DATA_DIR"
M = TypeVar("M", bound=BaseModel)


def data_dir() -> Path:
    """The documented home of the ledger, keys and audit log when no config file is given."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / "owstack").absolute()


def resolve_path(value: str, base: Path) -> str:
    """`value` made absolute against `base` (a `~` is expanded; env.NAME references are kept)."""
    if value.startswith("env."):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def resolve_database_url(url: str, base: Path) -> str:
    """`sqlite:///rel.db` -> `sqlite:////base/rel.db`; other URLs and in-memory SQLite unchanged."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite" or rest in ("", ":memory:") or rest.startswith("file:"):
        return url
    file, query_sep, query = rest.partition("?")
    return f"{scheme}:///{resolve_path(file, base)}{query_sep}{query}"


def resolve_locations(model: M, base: Path) -> M:
    """A copy of `model` with every marked field, in every nested section, made absolute against `base`."""
    updates: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        marker = _marker(field.metadata, field.annotation)
        if marker is not None and isinstance(value, str):
            fixed = resolve_database_url(value, base) if marker.kind == "database" else resolve_path(value, base)
            if fixed != value:
                updates[name] = fixed
        elif isinstance(value, BaseModel):
            nested = resolve_locations(value, base)
            if nested is not value:
                updates[name] = nested
        elif isinstance(value, Mapping) and any(isinstance(v, BaseModel) for v in value.values()):
            resolved = {k: resolve_locations(v, base) if isinstance(v, BaseModel) else v for k, v in value.items()}
            if any(resolved[k] is not value[k] for k in value):
                updates[name] = resolved
    return model.model_copy(update=updates) if updates else model


def _marker(metadata: list[Any], annotation: Any) -> Location | None:
    """The field's `Location`, also when it sits inside `FilePath | None`."""
    for item in metadata:
        if isinstance(item, Location):
            return item
    for arg in get_args(annotation):
        for item in getattr(arg, "__metadata__", ()):
            if isinstance(item, Location):
                return item
    return None
