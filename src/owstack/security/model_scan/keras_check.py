"""Keras model configs: the part of a `.keras` or `.h5` model that runs code when the model is loaded.

A Keras model file is weights plus a JSON config that `load_model` turns back into objects. Two things
in it run code: a `Lambda` layer, whose function is stored as marshalled Python bytecode or source
(`function_type: lambda`, Keras 3 `__lambda__`; CVE-2024-3660 ran it despite `safe_mode`), and any
object whose `module` Keras imports to build it (CVE-2025-1550 reached arbitrary modules this way). The
`.keras` format keeps the config in `config.json` inside a zip; the older `.h5` format keeps it in the
`model_config` attribute, read here from the file's bytes (h5py is not a dependency): every JSON object
in the file is parsed, so escapes such as `"Lamb\\u0064a"` are read as Keras reads them.
"""

from __future__ import annotations

import json
import mmap
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from owstack.security.model_scan import containers
from owstack.security.model_scan.pickle_policy import verdict

#: packages whose classes a Keras config names in normal use (keras_hub, keras_nlp and keras_cv are Keras' own
#: model libraries: their classes are registered Keras serializables, `keras_hub>GemmaBackbone`)
KERAS_MODULES = frozenset({"keras", "tf_keras", "tensorflow", "keras_hub", "keras_nlp", "keras_cv"})
CONFIG_MEMBERS = ("config.json",)
MAX_CONFIG_BYTES = 64 * 1024 * 1024
MAX_OBJECTS = 20_000
_OBJECT_START = re.compile(rb'\{\s*"')


def is_keras_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "config.json" in names and bool({"metadata.json", "model.weights.h5"} & names)


def zip_configs(path: Path) -> list[Any]:
    """The JSON configs of a `.keras` zip (raises `ContainerError` for a bomb or a bad config)."""
    with path.open("rb") as fh:
        members = list(containers.zip_members(fh, lambda name, head: name in CONFIG_MEMBERS))
    out = []
    for member in members:
        try:
            out.append(json.loads(member.data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise containers.ContainerError(f"{member.name} is not JSON: {exc}") from None
    if not out:
        raise containers.ContainerError("Keras archive without config.json")
    return out


def embedded_configs(path: Path) -> list[Any]:
    """Every JSON object with a `class_name` found in the bytes of a file (an `.h5` model, `keras_metadata.pb`)."""
    if path.stat().st_size == 0:
        return []
    found: list[Any] = []
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = 0
        for tries, match in enumerate(_OBJECT_START.finditer(data)):
            if tries > MAX_OBJECTS:
                raise containers.ContainerError(f"more than {MAX_OBJECTS} JSON candidates")
            if match.start() < end:
                continue
            parsed = _json_at(data, match.start())
            if parsed is None:
                continue
            value, end = parsed
            if _has_class_name(value):
                found.append(value)
    return found


def _json_at(data: Any, start: int) -> tuple[Any, int] | None:
    """The JSON value at `start` and where it ends, reading 64 KiB first and more only while the value
    is cut by the window (candidates in binary data fail within a few bytes)."""
    size = 1 << 16
    while True:
        raw = data[start : start + size]
        window = raw.decode("utf-8", "replace")
        try:
            value, length = json.JSONDecoder().raw_decode(window)
        except json.JSONDecodeError as exc:
            cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(window) - 1
            if not cut or len(raw) < size or size >= MAX_CONFIG_BYTES:
                return None
            size *= 16
            continue
        except (ValueError, RecursionError):
            return None
        return value, start + len(window[:length].encode("utf-8", "replace"))


def _has_class_name(value: Any) -> bool:
    return any(isinstance(node, dict) and "class_name" in node for node in _nodes(value))


def _nodes(value: Any) -> Iterator[Any]:
    stack = [value]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


#: functions Keras refuses to deserialize since 3.11 (`NON_MODELING_APIS`: file downloads and writes, model
#: loading, turning safe mode off) and TensorFlow functions that run Python or touch files; a config that
#: names one is an attack on the Keras versions that still resolved them (keras.utils.get_file overwrote files)
NON_MODELING = frozenset(
    {
        "clear_session",
        "enable_unsafe_deserialization",
        "load_model",
        "model_from_json",
        "save_model",
        "image_dataset_from_directory",
        "load_img",
        "save_img",
        "text_dataset_from_directory",
        "audio_dataset_from_directory",
        "deserialize_keras_object",
        "load_weights",
        "save_weights",
        "register_keras_serializable",
        "serialize_keras_object",
        "get_file",
        "write_file",
        "read_file",
        "py_function",
        "numpy_function",
        "py_func",
        # second red-team pass: Keras Hub's preset loaders download and load whole models, TensorFlow's
        # library loaders load native code
        "from_preset",
        "from_pretrained",
        "load_serialized_object",
        "load_op_library",
        "load_library",
        "set_global_attribute",  # turns safe mode off from inside a config (CVE-2025-9906's first step)
        "load_data",  # keras.datasets.*.load_data downloads an archive and unpickles it (cifar10, imdb, ...)
    }
)
#: config keys that name a file or URL a layer reads when it is built: the lookup layers' `vocabulary`
#: (keras/src/layers/preprocessing/index_lookup.py `set_vocabulary`; Keras refuses it in safe mode only since
#: https://github.com/keras-team/keras/pull/21751), Keras Hub tokenizers' `vocabulary`, `merges` and `proto`
#: (https://github.com/keras-team/keras-hub/pull/2517), a TFSMLayer's SavedModel `filepath`
FILE_KEYS = frozenset({"vocabulary", "merges", "proto", "filepath", "vocabulary_file", "vocab_file", "spm_file"})
#: tf.keras 2's TFOpLambda/SlicingOpLambda call `tf.<function>`: namespaces that reach files, native code or
#: Python (tf.io.write_file, tf.io.gfile.*, tf.raw_ops.WriteFile, tf.saved_model.load, tf.compat.v1.py_func)
TF_RISKY_STEPS = frozenset(
    {"io", "gfile", "raw_ops", "saved_model", "summary", "debugging", "sysconfig", "autograph", "experimental"}
)
TF_RISKY_NAMES = frozenset({"print", "ReadFile", "WriteFile", "PyFunc", "EagerPyFunc", "MatchingFiles", "Save"})


def _torch_module(node: dict[str, Any], name: str) -> tuple[str, str] | None:
    """A `TorchModuleWrapper` keeps its torch module as `torch.save` bytes in base64 that Keras loads with
    `torch.load(weights_only=False)` (keras/src/utils/torch_utils.py `from_config`; Keras 3.12+ asks for
    `safe_mode=False` first): the pickle is analysed like a checkpoint."""
    import base64
    import binascii

    from owstack.security.model_scan import pickle_files

    inner = node.get("config")
    blob = inner.get("module") if isinstance(inner, dict) else None
    if not isinstance(blob, str):
        return None
    where = f"TorchModuleWrapper {name!r}".replace(" ''", "")
    try:
        data = base64.b64decode(blob, validate=False)
    except (binascii.Error, ValueError) as exc:
        return "high", f"{where}: its pickled torch module is not base64 ({exc})"
    outcome = pickle_files.analyse_data(data, "module")
    worst = pickle_files.worst_hit(outcome) or "medium"
    hits = [h.what for r in outcome.reports.values() for h in r.hits if h.severity == worst]
    detail = f": imports {', '.join(hits[:4])}" if hits else ""
    message = f"{where} holds a pickled torch module that Keras loads with torch.load(weights_only=False){detail}"
    return worst, message


def code_in(config: Any) -> list[tuple[str, str]]:
    """(severity, message) for each part of a Keras config that runs code on load."""
    out: list[tuple[str, str]] = []
    for node in _nodes(config):
        if not isinstance(node, dict):
            continue
        cls = node.get("class_name")
        name = (node.get("config") or {}).get("name", "") if isinstance(node.get("config"), dict) else ""
        if cls == "TorchModuleWrapper":
            found = _torch_module(node, str(name))
            if found is not None:
                out.append(found)
        target_name = node.get("config") if cls == "function" and isinstance(node.get("config"), str) else cls
        if "module" in node and isinstance(target_name, str) and target_name.split(".")[-1] in NON_MODELING:
            out.append(("critical", f"{node.get('module')}.{target_name} is resolved by Keras on load (not a layer)"))
        if cls in ("Lambda", "__lambda__") or node.get("function_type") == "lambda":
            out.append(("critical", f"{cls or 'layer'} {name!r}".replace(" ''", "") + " holds Python code run on load"))
        out += _reads_files(node, cls, str(name))
        module = node.get("module")
        if isinstance(module, str) and module.split(".")[0] not in KERAS_MODULES and "class_name" in node:
            target = node.get("config") if cls == "function" and isinstance(node.get("config"), str) else cls
            severity = "critical" if verdict(module, str(target)) == "critical" else "high"
            out.append((severity, f"{module}.{target} is imported by Keras on load"))
    return out


def _reads_files(node: dict[str, Any], cls: Any, name: str) -> list[tuple[str, str]]:
    """Layers that read a file, a URL or a whole other model named in their config when they are built, and
    tf.keras 2 op layers that call TensorFlow functions reaching files or Python."""
    config = node.get("config")
    if not isinstance(config, dict) or not isinstance(cls, str):
        return []
    where = f"{cls} {name!r}".replace(" ''", "")
    out: list[tuple[str, str]] = []
    if cls in ("TFOpLambda", "SlicingOpLambda") and isinstance(config.get("function"), str):
        steps = config["function"].split(".")
        if steps[-1] in NON_MODELING or steps[-1] in TF_RISKY_NAMES:
            out.append(("critical", f"{where} calls tf.{config['function']} (files, native code or Python)"))
        elif TF_RISKY_STEPS.intersection(steps):
            out.append(("high", f"{where} calls tf.{config['function']}, which reaches files or the runtime"))
    if cls == "TFSMLayer":
        path = config.get("filepath")
        out.append(("high", f"{where} loads the TensorFlow SavedModel at {path!r}, a graph the scanner does not see"))
        return out
    for key in sorted(FILE_KEYS & config.keys()):
        value = config[key]
        if isinstance(value, str) and value.strip():
            out.append(("high", f"{where} reads {key} from {value[:120]!r} when it is built (a file or URL)"))
    return out
