"""Code that a model archive carries or names for its loader, beside its pickles.

- Native libraries inside an archive (by suffix or ELF/Mach-O magic): an AOTInductor package (`.pt2`) holds
  the compiled model as a shared library that `torch._inductor.aoti_load_package` loads with dlopen.
- Python source where a loader runs it: a TorchServe `.mar` (its `MAR-INF/MANIFEST.json` names the handler
  module the server imports), a `torch.package` archive (`.data/extern_modules`: its `PackageImporter`
  imports the archive's modules), and a zipped Hugging Face folder's `modeling_*.py`, `configuration_*.py`,
  ... that `trust_remote_code=True` runs. Other `.py` files in an archive (a zipped project's scripts) and
  TorchScript's `code/` folder (compiled by `torch.jit.load`, `torchscript_check`) are not reported here.
- Hydra `_target_` in a model's configuration: NeMo (`.nemo` tar: `model_config.yaml`, CVE-2025-23304) and
  libraries that keep their config in a safetensors file's `__metadata__` pass it to
  `hydra.utils.instantiate`, which imports and calls the dotted path it names with the config's arguments
  (Palo Alto Networks Unit 42, "RCE vulnerabilities in AI Python libraries", NeMo, Uni2TS, FlexTok). Targets
  that the pickle policy rates critical (`builtins.exec`, `os.system`, `subprocess.Popen`, `torch.load`) are
  reported; library classes, which such configs name in normal use, are not.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from owstack.security.model_scan.pickle_policy import verdict

NATIVE_SUFFIXES = frozenset({".so", ".dylib", ".dll", ".pyd"})
NATIVE_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xca\xfe\xba\xbe")
PYTHON_SUFFIXES = frozenset({".py", ".pyc"})
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000


#: members that make a loader import the archive's Python modules (TorchServe, torch.package)
CODE_LOADER_MARKERS = re.compile(r"(^|/)(MAR-INF/MANIFEST\.json|\.data/extern_modules)$")
#: the module names transformers' dynamic_module_utils imports with trust_remote_code=True
REMOTE_CODE = re.compile(
    r"(^|/)(modeling|configuration|tokenization|processing|image_processing|feature_extraction|modular)_[^/]*\.py$"
)


def code_kind(name: str, head: bytes) -> str | None:
    """'native library' or 'Python source' for a member that is one (by name or, for natives, magic)."""
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in NATIVE_SUFFIXES or head.startswith(NATIVE_MAGICS) or (head.startswith(b"MZ") and suffix == ".exe"):
        return "native library"
    if suffix in PYTHON_SUFFIXES:
        return "Python source"
    return None


def runs_python(name: str, members: set[str]) -> bool:
    """Whether a loader runs this Python member: remote-code names, or an archive whose markers say its
    server or importer loads its modules."""
    return bool(REMOTE_CODE.search(name)) or any(CODE_LOADER_MARKERS.search(m) for m in members)


def is_config(name: str) -> bool:
    return PurePosixPath(name.lower()).suffix in CONFIG_SUFFIXES


def nodes(value: Any, limit: int = MAX_NODES) -> Iterator[Any]:
    """Every object, list and scalar inside parsed JSON, at most `limit` of them (iterative: no recursion)."""
    stack, seen = [value], 0
    while stack and seen < limit:
        node = stack.pop()
        seen += 1
        yield node
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def target_verdict(target: str) -> str | None:
    """The pickle policy's verdict on a Hydra `_target_` dotted path (None for a single name)."""
    parts = target.strip().split(".")
    if len(parts) < 2 or not all(parts):
        return None
    return verdict(parts[0], ".".join(parts[1:]))


def dangerous_targets(config: Any) -> list[str]:
    """The `_target_` paths of a parsed config that the pickle policy rates critical."""
    out = []
    for node in nodes(config):
        if not isinstance(node, dict):
            continue
        for key in ("_target_", "target"):  # NeMo imports `target` by path too (model_utils.import_class_by_path)
            target = node.get(key)
            if isinstance(target, str) and target_verdict(target) == "critical":
                out.append(target)
    return list(dict.fromkeys(out))


_STRING_OPS = frozenset(
    {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
)
_TARGET_KEYS = frozenset({"_target_", "target"})
MAX_TARGET_OPS = 2_000_000


def pickled_targets(data: bytes) -> list[str]:
    """Hydra targets a pickle holds as plain strings (`{"_target_": "builtins.exec"}`, a key and its value in a
    dict, repeated keys through the memo): a PyTorch Lightning checkpoint's `hyper_parameters` hold the model's
    config, which a NeMo-style model instantiates when `load_from_checkpoint` builds it, even under
    `torch.load(weights_only=True)` (plain dicts and strings pass that unpickler). Only targets the pickle
    policy rates critical are returned; the successive pickles of a legacy torch file are all read."""
    if b"target" not in data:
        return []
    import pickletools

    out: list[str] = []
    start = ops = 0
    stream = io.BytesIO(data)  # shares the bytes; genops reports positions in the stream
    while start < len(data) and ops < MAX_TARGET_OPS:
        stream.seek(start)
        memo: dict[int, Any] = {}
        last: Any = None
        expecting = False
        end = start
        try:
            for op, arg, pos in pickletools.genops(stream):
                ops += 1
                end = (pos or 0) + 1
                if ops > MAX_TARGET_OPS:
                    break
                name = op.name
                if name == "MEMOIZE":
                    memo[len(memo)] = last
                    continue
                if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[int(arg or 0)] = last
                    continue
                value: Any = None
                if name in _STRING_OPS:
                    value = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    value = memo.get(int(arg or 0))
                if expecting and isinstance(value, str) and target_verdict(value) == "critical":
                    out.append(value)
                expecting = value in _TARGET_KEYS
                last = value
        except (ValueError, TypeError, UnicodeDecodeError, EOFError):
            break
        if end <= start:
            break
        start = end
    return list(dict.fromkeys(out))


def parse_config(name: str, data: bytes) -> Any:
    """A YAML or JSON member (None when it does not parse or is too large)."""
    if len(data) > MAX_CONFIG_BYTES:
        return None
    try:
        text = data.decode("utf-8")
        if name.lower().endswith(".json"):
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, RecursionError, ImportError):
        return None
    except Exception:  # yaml.YAMLError and its parser errors
        return None


def metadata_configs(metadata: dict[str, Any]) -> list[Any]:
    """The JSON documents (and plain `_target_` entries) of a safetensors `__metadata__` map."""
    out: list[Any] = []
    if "_target_" in metadata:
        out.append(metadata)
    for value in metadata.values():
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                out.append(json.loads(value))
            except (ValueError, RecursionError):
                continue
    return out
