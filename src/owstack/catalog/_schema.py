"""Strict raw schemas of `models.yaml` and `recipes.yaml`, and the user-override merge.

The raw models mirror the files (unknown keys are errors); `catalog.models` and `catalog.recipes` turn
them into the immutable dataclasses the rest of owstack uses.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from owstack.errors import ConfigError
from owstack.layers import Layer


def _iso_date(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


IsoDate = Annotated[str, BeforeValidator(_iso_date)]
Modality = Literal["text", "image", "video", "audio"]
Engine = Literal["vllm", "sglang", "ollama", "llamacpp"]
ENGINES: tuple[str, ...] = ("vllm", "sglang", "ollama", "llamacpp")


class _Raw(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawModalities(_Raw):
    input: list[Modality]
    output: list[Modality]


class RawReasoning(_Raw):
    switch: Literal["chat_template_kwargs", "reasoning_effort", "none"]
    key: str | None = None
    default_on: bool = False
    on_value: str | bool | None = None
    off_value: str | bool | None = None
    values: list[str | bool] = []
    think_tags: Annotated[list[str], Field(min_length=2, max_length=2)] | None = None
    note: str = ""


class RawVariant(_Raw):
    name: str
    hf_repo: str
    bytes_per_param: Annotated[float, Field(gt=0, le=4)]
    weights_gb: Annotated[float, Field(gt=0)] | None = None
    requires_arch: list[str] = []


class RawOllamaTag(_Raw):
    tag: str
    size_gb: Annotated[float, Field(gt=0)]


class RawGGUF(_Raw):
    package: str
    file: str
    bytes: Annotated[int, Field(gt=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class RawParamsAlt(_Raw):
    total: Annotated[float, Field(gt=0)]
    active: Annotated[float, Field(gt=0)]
    source: str


class RawModel(_Raw):
    name: str
    hf_repo: str
    layer: Layer
    params_total: Annotated[float, Field(gt=0)]
    params_active: Annotated[float, Field(gt=0)]
    context: Annotated[int, Field(gt=0)]
    modalities: RawModalities
    license: str
    template: str
    reasoning: RawReasoning
    source: Annotated[str, Field(min_length=1)]
    date: IsoDate
    license_osi: bool = False
    aliases: list[str] = []
    architecture: str = ""
    params_alt: RawParamsAlt | None = None
    context_served: Annotated[int, Field(gt=0)] | None = None
    gguf: RawGGUF | None = None
    gguf_install: str | None = None
    variants: list[RawVariant] = []
    ollama_tags: list[RawOllamaTag] = []
    notes: list[str] = []
    #: the tool-call markup the model writes (a `tool_calls.yaml` format)
    tool_calls: str | None = None


class RawToolCallFormat(_Raw):
    start: Annotated[str, Field(min_length=1)]
    end: Annotated[str, Field(min_length=1)] | None
    body: Literal["json", "xml_function", "mistral", "json_list"]
    leading: Annotated[str, Field(min_length=1)] | None = None
    source: Annotated[str, Field(min_length=1)]
    date: IsoDate


# ---- recipes.yaml -------------------------------------------------------------------------------------


class RawGPU(_Raw):
    memory_gb: Annotated[float, Field(gt=0)]
    arch: str
    aliases: list[str] = []
    source: str
    date: IsoDate


class RawEngine(_Raw):
    """How one engine is started, with `{placeholders}` filled per recipe."""

    program: list[str]
    listen: list[str] = []
    flags: list[str] = []
    setup: list[list[str]] = []
    env: dict[str, str] = {}
    port: Annotated[int, Field(gt=0, lt=65536)]
    #: the `engine:` of the owstack backend entry
    backend_engine: str
    tensor_parallel: list[str] = []
    data_parallel: list[str] = []
    expert_parallel: list[str] = []
    #: GPU-memory fraction the engine takes by default (vLLM --gpu-memory-utilization)
    memory_fraction: Annotated[float, Field(gt=0, le=1)] = 0.9
    #: headroom over the file size for llama.cpp/Ollama (KV cache, buffers)
    file_headroom_gb: Annotated[float, Field(ge=0)] = 0.0
    alternatives: dict[str, list[str]] = {}
    #: extras any model on this engine can take (`owstack recipe ... --option lora`)
    options: dict[str, RawOption] = {}
    notes: list[str] = []
    source: str
    date: IsoDate


class RawOption(_Raw):
    flags: list[str] = []
    env: dict[str, str] = {}
    note: str


class RawModelEngine(_Raw):
    """One model on one engine."""

    baseline_gpus: str | None = None
    #: tensor (with expert_parallel for MoE) or data (replicas of a model that fits one GPU)
    parallel: Literal["tensor", "data", "none"] = "tensor"
    expert_parallel: bool = False
    tp_sizes: list[int] = [1, 2, 4, 8]
    flags: list[str] = []
    vars: dict[str, str] = {}
    variant_vars: dict[str, dict[str, str]] = {}
    memory_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    #: variant preference per GPU architecture ("default" for any other)
    variant_order: dict[str, list[str]] = {}
    options: dict[str, RawOption] = {}
    env: dict[str, str] = {}
    notes: list[str] = []
    source: str
    date: IsoDate


class RawModelRecipes(_Raw):
    #: least memory left for KV/state cache after the weights, GB (an owstack estimate; see docs)
    kv_headroom_gb: Annotated[float, Field(ge=0)]
    engines: dict[Engine, RawModelEngine] = {}
    unsupported: dict[Engine, str] = {}


class RawRecipes(_Raw):
    host: str = "127.0.0.1"
    gpus: dict[str, RawGPU]
    engines: dict[Engine, RawEngine]
    models: dict[str, RawModelRecipes]


# ---- loading and merging --------------------------------------------------------------------------------

T = TypeVar("T", bound=BaseModel)


def load_user_file(path: str, top_key: str, env_name: str) -> dict[str, Any]:
    """Read a user override file: a mapping with `top_key:` holding entries by id."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f"{env_name}: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{env_name}: {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get(top_key), dict):
        raise ConfigError(f"{env_name}: {path} must be a mapping with a `{top_key}:` mapping of entries by id")
    extra = sorted(set(data) - {top_key})
    if extra:
        raise ConfigError(f"{env_name}: {path}: unknown top-level key {extra[0]!r} (only `{top_key}:`)")
    return dict(data[top_key])


def deep_merge(base: Any, over: Any) -> Any:
    """`over` wins; mappings are merged key by key, anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return over


def merge_entries(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(base[key], value) if key in base else value
    return out


def _where(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def validate_entries(entries: dict[str, Any], model: type[T], origin: str) -> dict[str, T]:
    out: dict[str, T] = {}
    for key, value in entries.items():
        if not re.match(r"^[a-z0-9][a-z0-9_.:-]{0,63}$", str(key)):
            raise ConfigError(f"{origin}: id {key!r} must be lowercase letters, digits, '.', '_', ':', '-'")
        try:
            out[str(key)] = model.model_validate(value)
        except ValidationError as exc:
            raise ConfigError(f"{origin}: {key}: {_where(exc)}") from None
    return out


def validate_document(data: Any, model: type[T], origin: str) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {_where(exc)}") from None
