"""Serving recipes: the command that serves a catalog model on an engine, and its owstack backend entry.

    r = recipe("nemotron-3-super", "vllm", "8xH100")
    r.command          # argv: ["vllm", "serve", "nvidia/...-FP8", "--host", "127.0.0.1", ...]
    r.shell            # the same, shell-quoted, with any environment assignments in front
    r.backend_entry    # {"engine": "vllm", "url": "http://127.0.0.1:8000/v1", "model": ..., ...}
    r.backend_yaml()   # that entry under `backends:`, ready to paste into owstack.yaml

Flags, baselines and notes come from `catalog/data/recipes.yaml` (each entry with source and date); the
memory check is `catalog.fit`. Anything that cannot work (unknown model, engine or GPU, a model with no
recipe for the engine, a variant that does not fit) raises `ConfigError` naming the option.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from owstack.address import ANY_ADDRESS, same_host
from owstack.catalog import load_data
from owstack.catalog._schema import (
    ENGINES,
    RawEngine,
    RawModelEngine,
    RawModelRecipes,
    RawRecipes,
    load_user_file,
    merge_entries,
    validate_document,
)
from owstack.catalog.fit import GPUs, fit, parse_gpus
from owstack.catalog.models import ModelCard, Variant, embedded_gguf_path, model_card
from owstack.errors import ConfigError

RECIPES_ENV = "OWSTACK_RECIPES_FILE"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Recipe:
    model: str
    engine: str
    #: the chosen checkpoint (BF16/FP8/NVFP4), Ollama tag or GGUF file name
    variant: str | None
    #: normalized GPU spec, e.g. "8xH100"; None for a local Ollama/llama.cpp server
    gpus: str | None
    command: list[str]
    shell: str
    env: dict[str, str]
    #: commands to run once before `command` (e.g. `ollama pull`)
    setup: list[list[str]]
    #: other ways to run the same server, e.g. {"llama-cpp-python": [...]}
    alternatives: dict[str, list[str]]
    notes: list[str]
    warnings: list[str]
    backend_name: str
    backend_entry: dict[str, Any]
    source: str
    date: str
    fit: dict[str, float] | None = None
    options: list[str] = field(default_factory=list)

    def backend_yaml(self) -> str:
        """The backend entry as owstack config YAML, with a reminder on the jurisdiction line."""
        import yaml

        text = yaml.safe_dump({"backends": {self.backend_name: self.backend_entry}}, sort_keys=False)
        note = "  # where the server runs: eu, us, local, ... (residency routing uses it)"
        return "\n".join(
            line + note if line.strip().startswith("jurisdiction:") else line for line in text.splitlines()
        )

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["backend_yaml"] = self.backend_yaml()
        return out


@cache
def _load(user: tuple[str, int] | None) -> RawRecipes:
    data: dict[str, Any] = dict(load_data("recipes"))
    origin = "recipes.yaml"
    if user is not None:
        data["models"] = merge_entries(data["models"], load_user_file(user[0], "models", RECIPES_ENV))
        origin = f"recipes.yaml + {user[0]}"
    return validate_document(data, RawRecipes, origin)


def recipes_data() -> RawRecipes:
    path = os.environ.get(RECIPES_ENV)
    if not path:
        return _load(None)
    try:
        return _load((path, Path(path).stat().st_mtime_ns))
    except OSError as exc:
        raise ConfigError(f"{RECIPES_ENV}: cannot read {path}: {exc.strerror or exc}") from None


def engines() -> tuple[str, ...]:
    return ENGINES


def _fill(items: Sequence[str], values: Mapping[str, str]) -> list[str]:
    def one(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in values:
                raise ConfigError(f"recipes.yaml: placeholder {{{m.group(1)}}} in {text!r} has no value")
            return values[m.group(1)]

        return _PLACEHOLDER.sub(sub, text)

    return [one(x) for x in items]


def _model_engine(card: ModelCard, engine: str, data: RawRecipes) -> tuple[RawModelRecipes, RawModelEngine]:
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    entry = data.models.get(card.id)
    if entry is None:
        raise ConfigError(f"model: {card.id} has no serving recipes in recipes.yaml")
    if engine in entry.unsupported:
        raise ConfigError(f"--engine {engine}: {card.name}: {entry.unsupported[engine]}")
    me = entry.engines.get(engine)  # type: ignore[call-overload]
    if me is None:
        have = ", ".join(entry.engines) or "none"
        raise ConfigError(f"--engine {engine}: no recipe for {card.id} on {engine} (recipes for: {have})")
    return entry, me


def _ordered_variants(card: ModelCard, me: RawModelEngine, gpus: GPUs, requested: str | None) -> list[Variant]:
    if requested is not None:
        return [card.variant(requested)]
    order = me.variant_order.get(gpus.arch) or me.variant_order.get("default") or []
    preferred = [card.variant(name) for name in order]
    return preferred + [v for v in card.variants if v not in preferred]


def _choose_gpu_variant(
    card: ModelCard,
    entry: RawModelRecipes,
    me: RawModelEngine,
    eng: RawEngine,
    gpus: GPUs,
    requested: str | None,
) -> tuple[Variant, dict[str, float]]:
    fraction = me.memory_fraction or eng.memory_fraction
    reasons: list[str] = []
    for v in _ordered_variants(card, me, gpus, requested):
        if v.requires_arch and gpus.arch not in v.requires_arch:
            reasons.append(f"{v.name} needs a {' or '.join(v.requires_arch)} GPU ({gpus.gpu} is {gpus.arch})")
            continue
        f = fit(v.weights_gb, entry.kv_headroom_gb, gpus, fraction)
        if f.ok:
            return v, {"weights_gb": f.weights_gb, "need_gb": f.need_gb, "usable_gb": f.usable_gb}
        reasons.append(f"{v.name} {f.describe(gpus)}")
    raise ConfigError(f"--gpus {gpus.label}: {card.name} does not fit: " + "; ".join(reasons))


def _parallel(me: RawModelEngine, eng: RawEngine, gpus: GPUs, card: ModelCard, engine: str) -> list[str]:
    n = gpus.count
    if me.parallel == "tensor":
        if n not in me.tp_sizes:
            sizes = ", ".join(map(str, me.tp_sizes))
            raise ConfigError(f"--gpus {gpus.label}: {card.id} on {engine} runs tensor parallel over {sizes} GPUs")
        flags = _fill(eng.tensor_parallel, {"tp": str(n)})
        return flags + (list(eng.expert_parallel) if me.expert_parallel else [])
    if me.parallel == "data" and n > 1:
        if not eng.data_parallel:
            raise ConfigError(f"--gpus {gpus.label}: {engine} has no data-parallel flag; use one GPU")
        return _fill(eng.data_parallel, {"dp": str(n)})
    return []


def _gpu_warnings(card: ModelCard, me: RawModelEngine, variant: Variant, gpus: GPUs, data: RawRecipes) -> list[str]:
    if me.baseline_gpus is None:
        return []
    base = parse_gpus(me.baseline_gpus, data.gpus)
    if base.label == gpus.label:
        return []
    how = {
        "tensor": f"uses tensor parallel {gpus.count}",
        "data": f"runs {gpus.count} data-parallel replica(s)",
    }.get(me.parallel, "")
    msg = f"{card.name} {variant.name}: published baseline {base.label}; {gpus.label} chosen: {how}"
    if gpus.total_gb < base.total_gb:
        less = f"{gpus.total_gb:g} vs {base.total_gb:g} GB"
        msg += f" (less memory than the baseline: {less}; lower --max-model-len if the KV cache runs short)"
    return [msg]


@dataclass
class _Build:
    """Mutable scratch while a recipe is assembled."""

    values: dict[str, str]
    variant: str | None = None
    gpus: str | None = None
    model_args: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fit: dict[str, float] | None = None
    served: str = ""


def _gpu_engine(
    card: ModelCard,
    entry: RawModelRecipes,
    me: RawModelEngine,
    eng: RawEngine,
    b: _Build,
    gpus_spec: str | None,
    variant: str | None,
    engine: str,
    data: RawRecipes,
) -> None:
    spec = gpus_spec or me.baseline_gpus
    if spec is None:
        raise ConfigError(f"--gpus: {card.id} on {engine} needs a GPU spec such as 1xH100")
    gpus = parse_gpus(spec, data.gpus)
    chosen, b.fit = _choose_gpu_variant(card, entry, me, eng, gpus, variant)
    b.variant, b.gpus, b.served = chosen.name, gpus.label, chosen.hf_repo
    b.values["repo"] = chosen.hf_repo
    b.values.update(me.vars)
    b.values.update(me.variant_vars.get(chosen.name, {}))
    b.model_args = _parallel(me, eng, gpus, card, engine)
    if gpus_spec is None:
        b.notes.append(f"--gpus not given: the published baseline {gpus.label} is used.")
    b.warnings += _gpu_warnings(card, me, chosen, gpus, data)


def _file_fit(
    size_gb: float,
    eng: RawEngine,
    entry: RawModelRecipes,
    gpus_spec: str | None,
    b: _Build,
    card: ModelCard,
    data: RawRecipes,
) -> None:
    if gpus_spec is None:
        b.notes.append(f"Needs about {size_gb + eng.file_headroom_gb:.1f} GB of GPU memory or RAM.")
        return
    gpus = parse_gpus(gpus_spec, data.gpus)
    f = fit(size_gb, eng.file_headroom_gb, gpus, eng.memory_fraction)
    if not f.ok:
        raise ConfigError(f"--gpus {gpus.label}: {card.name} ({b.variant}) does not fit: {f.describe(gpus)}")
    b.gpus, b.fit = gpus.label, {"weights_gb": f.weights_gb, "need_gb": f.need_gb, "usable_gb": f.usable_gb}


def _ollama(card: ModelCard, b: _Build, variant: str | None) -> float:
    if not card.ollama_tags:
        raise ConfigError(f"--engine ollama: {card.name} has no Ollama tag in the catalog")
    tags = {t.tag.lower(): t for t in card.ollama_tags}
    tag = card.ollama_tags[0] if variant is None else tags.get(variant.lower())
    if tag is None:
        raise ConfigError(f"--variant: {variant!r} is not an Ollama tag of {card.id} ({', '.join(tags)})")
    b.variant = b.served = b.values["tag"] = tag.tag
    return tag.size_gb


def _gguf_file(card: ModelCard, b: _Build, file: str | None) -> float | None:
    b.values["alias"] = b.served = card.id
    if file is not None:
        b.values["file"], b.variant = file, Path(file).name
        return Path(file).stat().st_size / 1e9 if Path(file).is_file() else None
    if card.gguf is not None:
        b.variant = card.gguf.file
        try:
            b.values["file"] = str(embedded_gguf_path(card))
        except ConfigError as exc:
            b.values["file"] = f"/path/to/{card.gguf.package}/{card.gguf.file}"
            b.warnings.append(str(exc))
        return card.gguf.bytes / 1e9
    b.values["file"] = f"/path/to/{card.id}.gguf"
    b.warnings.append(f"no GGUF file is pinned in the catalog for {card.id}: pass --file PATH")
    return None


def _options(me: RawModelEngine, chosen: Sequence[str], b: _Build, env: dict[str, str], eng: RawEngine) -> list[str]:
    flags: list[str] = []
    available = {**me.options, **eng.options}  # the model's own extras, then engine-wide ones (lora)
    for name in chosen:
        opt = available.get(name)
        if opt is None:
            known = ", ".join(available) or "none for this model and engine"
            raise ConfigError(f"--option: unknown option {name!r}; options: {known}")
        flags += _fill(opt.flags, b.values)
        env.update(_fill_map(opt.env, b.values))
    for name, opt in available.items():
        if name not in chosen:
            b.notes.append(f"Available: --option {name}: {opt.note}")
    return flags


def _fill_map(m: Mapping[str, str], values: Mapping[str, str]) -> dict[str, str]:
    return {k: _fill([v], values)[0] for k, v in m.items()}


def recipe(
    model: str,
    engine: str,
    gpus: str | None = None,
    *,
    variant: str | None = None,
    options: Sequence[str] = (),
    file: str | None = None,
    host: str | None = None,
    port: int | None = None,
    gateway: tuple[str, int] | None = None,
) -> Recipe:
    """The serve command for `model` on `engine` (vllm, sglang, ollama, llamacpp) and its backend entry.

    `gpus` (e.g. "8xH100") defaults to the recipe's published baseline on vLLM/SGLang and to none (a
    local machine) on Ollama/llama.cpp. `variant` forces a checkpoint (FP8, NVFP4, ...) or Ollama tag;
    `options` adds named extras (e.g. "mtp"); `file` is the GGUF for llama.cpp. `gateway` (host, port) is
    where owstack listens: the engine's default port moves off it, and a chosen port on it is a warning.
    """
    data = recipes_data()
    card = model_card(model)
    entry, me = _model_engine(card, engine, data)
    eng: RawEngine = data.engines[engine]  # type: ignore[index]
    bind = host or data.host
    b = _Build(values={"host": bind, "port": str(port or _free_of(gateway, bind, eng.port))})
    if port is not None and gateway is not None and _collides(bind, gateway, port):
        b.warnings.append(
            f"port {port} is the owstack gateway's own ({gateway[0]}:{gateway[1]}): the backend entry would "
            "make the gateway call itself; pick another --port"
        )
    if engine in ("vllm", "sglang"):
        _gpu_engine(card, entry, me, eng, b, gpus, variant, engine, data)
    else:
        size = _ollama(card, b, variant) if engine == "ollama" else _gguf_file(card, b, file)
        if size is not None:
            _file_fit(size, eng, entry, gpus, b, card, data)
        elif gpus is not None:
            b.gpus = parse_gpus(gpus, data.gpus).label
    return _assemble(card, engine, eng, me, b, options)


def _collides(bind: str, gateway: tuple[str, int] | None, port: int) -> bool:
    """Whether an engine listening on bind:port would take the gateway's own address on this machine."""
    if gateway is None or port != gateway[1]:
        return False
    return bind in ANY_ADDRESS or gateway[0] in ANY_ADDRESS or same_host(bind, gateway[0])


def _free_of(gateway: tuple[str, int] | None, bind: str, port: int) -> int:
    """The engine's default port, or the next one up when the gateway listens there."""
    return port + 1 if _collides(bind, gateway, port) else port


def _backend_entry(card: ModelCard, eng: RawEngine, b: _Build) -> dict[str, Any]:
    host = b.values["host"]
    if host in ("0.0.0.0", "::", ""):
        b.warnings.append(f"the server listens on every interface ({host}): add --api-key and a firewall rule")
        host = "127.0.0.1"
    elif host not in ("127.0.0.1", "localhost", "::1"):
        b.warnings.append(f"the server listens on {host}, beyond loopback: add --api-key and keep it private")
    url_host = f"[{host}]" if ":" in host else host
    entry: dict[str, Any] = {
        "engine": eng.backend_engine,
        "url": f"http://{url_host}:{b.values['port']}/v1",
        "model": b.served,
        "catalog": card.id,
        "jurisdiction": "local",
    }
    if b.gpus:
        entry["hardware"] = b.gpus
    return entry


def _assemble(
    card: ModelCard, engine: str, eng: RawEngine, me: RawModelEngine, b: _Build, options: Sequence[str]
) -> Recipe:
    env = _fill_map({**eng.env, **me.env}, b.values)
    extra = _options(me, options, b, env, eng)
    command = _fill([*eng.program, *eng.listen, *eng.flags, *me.flags], b.values) + b.model_args + extra
    backend = _backend_entry(card, eng, b)
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return Recipe(
        model=card.id,
        engine=engine,
        variant=b.variant,
        gpus=b.gpus,
        command=command,
        shell=(prefix + " " if prefix else "") + shlex.join(command),
        env=env,
        setup=[_fill(step, b.values) for step in eng.setup],
        alternatives={k: _fill(v, b.values) for k, v in eng.alternatives.items()},
        notes=b.notes + _fill([*me.notes, *eng.notes], b.values),
        warnings=b.warnings,
        backend_name=f"{card.id}-{engine}",
        backend_entry=backend,
        source=f"{me.source}; engine: {eng.source}",
        date=me.date,
        fit=b.fit,
        options=list(options),
    )
