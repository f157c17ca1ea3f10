"""Hugging Face configuration files that decide what a loader imports or allocates.

- `auto_map` (in `config.json`, `tokenizer_config.json`, `processor_config.json`,
  `preprocessor_config.json`, ...) names the class `trust_remote_code=True` imports. A reference
  `"module.Class"` is a module of the same repository (the folder's own `modeling_*.py`, judged with
  the folder); `"owner/repo--module.Class"` makes transformers download and run `module.py` from ANOTHER
  repository (`dynamic_module_utils.get_class_from_dynamic_module` splits on `--`): code that is not in
  the scanned folder at all, and that its owner can change after the scan (high, `OWS-MDL-033`); the
  same for a `custom_pipelines` task's `impl`, and inside a zipped model folder. A sentence-transformers
  `modules.json` names the class of each module by its dotted path (`module_types`), a PEFT
  `adapter_config.json` its base model's library and class (`peft_base_class`), a diffusers
  `model_index.json` each component's library and class (`diffusers_components`).
- Model sizes (`vocab_size`, `hidden_size`, `intermediate_size`, `num_hidden_layers`, ...): the loader
  allocates the model the config describes before it reads a single weight, so a config whose sizes
  describe trillions of parameters makes `from_pretrained` (or `from_config`) allocate terabytes
  (`OWS-MDL-034`: medium above 2 x 10^12 parameters, high above 10^13; the largest published models
  are near 10^12, most of it in experts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from owstack.security.model_scan.archive_code import nodes

NAMES = frozenset(
    {
        "config.json",
        "tokenizer_config.json",
        "processor_config.json",
        "preprocessor_config.json",
        "feature_extractor_config.json",
        "image_processor_config.json",
        "video_preprocessor_config.json",
        "generation_config.json",
        "modules.json",
        "adapter_config.json",
        "model_index.json",
    }
)
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 100_000
MEDIUM_PARAMS = 2 * 10**12
HIGH_PARAMS = 10**13


def is_config(name: str) -> bool:
    return name.lower() in NAMES


def load(path: Path) -> Any:
    """The parsed JSON (None when it is not JSON or too large)."""
    if path.stat().st_size > MAX_BYTES:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):  # AutoTokenizer: [slow, fast], either may be None
        for item in value:
            if isinstance(item, str):
                yield item


def _auto_maps(config: Any) -> Iterator[dict[str, Any]]:
    """Every `auto_map` of a config, also in nested sub-configs (`text_config`, ...), and the `impl` of
    each `custom_pipelines` task (transformers' `pipeline()` imports it the same way)."""
    for node in nodes(config, MAX_NODES):
        if isinstance(node, dict) and isinstance(node.get("auto_map"), dict):
            yield node["auto_map"]
        if isinstance(node, dict) and isinstance(node.get("custom_pipelines"), dict):
            for task, spec in node["custom_pipelines"].items():
                if isinstance(spec, dict) and "impl" in spec:
                    yield {f"pipeline {task}": spec["impl"]}


def remote_code(config: Any) -> list[str]:
    """`Auto class -> owner/repo--module.Class` for every auto_map entry that runs another repository's code."""
    out: list[str] = []
    for auto_map in _auto_maps(config):
        for auto, value in auto_map.items():
            for ref in _references(value):
                if "--" in ref:
                    out.append(f"{auto} -> {ref}")
    return list(dict.fromkeys(out))


def module_types(config: Any) -> list[tuple[str, str]]:
    """(severity, type) for the modules of a sentence-transformers `modules.json` that are not its own:
    `SentenceTransformer` imports each entry's `type` by its dotted path (`import_from_string`) and calls its
    `load`; a reference it cannot import is fetched like an auto_map entry with trust_remote_code (so
    `owner/repo--module.Class` runs another repository's code: high). A path the pickle policy rates critical
    is critical; any other module outside sentence_transformers medium (a module of the repository, judged
    with the folder, or an installed package imported by name)."""
    from owstack.security.model_scan.pickle_policy import verdict

    out: list[tuple[str, str]] = []
    for entry in config if isinstance(config, list) else []:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or kind.startswith("sentence_transformers."):
            continue
        module, _, name = kind.rpartition(".")
        if "--" in kind:
            out.append(("high", kind))
        elif module and name and verdict(module, name) == "critical":
            out.append(("critical", kind))
        else:
            out.append(("medium", kind))
    return out


#: libraries whose model classes a PEFT adapter names as its base (`auto_mapping.parent_library`)
PEFT_BASE_LIBRARIES = frozenset({"transformers", "diffusers", "peft", "timm", "sentence_transformers"})


def peft_base_class(config: Any) -> tuple[Literal["medium", "critical"], str] | None:
    """(severity, module.Class) for a PEFT `adapter_config.json` whose `auto_mapping` names a base class outside
    the model libraries: `AutoPeftModel.from_pretrained` runs `importlib.import_module(parent_library)` and
    calls `getattr(module, base_model_class).from_pretrained(...)` (critical when the pickle policy rates the
    path critical, else medium)."""
    from owstack.security.model_scan.pickle_policy import verdict

    mapping = config.get("auto_mapping") if isinstance(config, dict) else None
    if not isinstance(mapping, dict):
        return None
    module, name = mapping.get("parent_library"), mapping.get("base_model_class")
    if not isinstance(module, str) or not isinstance(name, str):
        return None
    if module.split(".")[0] in PEFT_BASE_LIBRARIES and "__" not in module + name:
        return None
    return ("critical" if verdict(module, name) == "critical" else "medium", f"{module}.{name}")


def diffusers_components(config: Any) -> list[str]:
    """`library.Class` of the components of a diffusers `model_index.json` (`"unet": ["diffusers",
    "UNet2DConditionModel"]`) that the pickle policy rates critical: `DiffusionPipeline.from_pretrained`
    imports each component's library with `importlib.import_module` and looks the class up in it."""
    from owstack.security.model_scan.pickle_policy import verdict

    out: list[str] = []
    for key, value in config.items() if isinstance(config, dict) else []:
        if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, str) and v for v in value):
            continue
        if key.startswith("_") and key != "_class_name":
            continue
        library, name = value
        if verdict(library, name) == "critical":
            out.append(f"{key}: {library}.{name}")
    return out


_VOCAB = ("vocab_size", "n_vocab", "padded_vocab_size")
_HIDDEN = ("hidden_size", "n_embd", "d_model", "dim", "model_dim", "embed_dim", "hidden_dim")
_INTER = ("intermediate_size", "ffn_dim", "n_inner", "d_ff", "ffn_hidden_size", "ffn_embed_dim")
_LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers")
_POSITIONS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len")
_EXPERTS = ("num_local_experts", "n_routed_experts", "num_experts")
_EXPERT_INTER = ("moe_intermediate_size", "expert_intermediate_size")


def _size(node: dict[str, Any], keys: tuple[str, ...]) -> int:
    """The largest integer among `keys` (a config may spell one size several ways); 0 if none."""
    values = [node[k] for k in keys if isinstance(node.get(k), int) and not isinstance(node.get(k), bool)]
    return max([v for v in values if v > 0], default=0)


def parameters(node: dict[str, Any]) -> int:
    """A rough parameter count of the model one config describes (embeddings, attention, MLP, experts)."""
    hidden = _size(node, _HIDDEN)
    vocab = _size(node, _VOCAB)
    layers = max(_size(node, _LAYERS), 1 if hidden else 0)
    inter = _size(node, _INTER) or 4 * hidden
    experts = _size(node, _EXPERTS)
    expert_inter = _size(node, _EXPERT_INTER) or inter
    per_layer = 4 * hidden * hidden + 3 * hidden * inter + 3 * experts * hidden * expert_inter
    return vocab * max(hidden, 1) + _size(node, _POSITIONS) * hidden + layers * per_layer


def absurd_sizes(config: Any) -> list[tuple[str, int]]:
    """(severity, estimated parameters) for every (sub-)config describing a model past the limits."""
    out: list[tuple[str, int]] = []
    for node in nodes(config, MAX_NODES):
        if not isinstance(node, dict):
            continue
        count = parameters(node)
        if count > HIGH_PARAMS:
            out.append(("high", count))
        elif count > MEDIUM_PARAMS:
            out.append(("medium", count))
    return out
