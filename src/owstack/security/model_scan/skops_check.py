"""scikit-learn models saved with skops (`.skops`): a zip whose `schema.json` is a tree of nodes, each naming
the `__module__` and `__class__` that `skops.io.load` imports and builds (and a `__loader__`, the node kind).

skops' safety is its trusted-types model: `load` refuses any type outside its default trusted set
(scikit-learn estimators, numpy and scipy types, builtin containers and scalars) unless the caller lists it
in `trusted=`, and callers routinely pass `get_untrusted_types(file=...)`, i.e. whatever the file names. So
every node is judged here: a type or function the pickle policy rates critical (`os.system`,
`subprocess.Popen`, `builtins.eval`, `numpy.load`, ...) is critical; any other type outside skops' default
trusted set is high (the user must trust it by hand); `OperatorFuncNode` and `MethodNode` are high too:
they reached objects the trust check did not see (CVE-2025-54412, CVE-2025-54413, fixed in skops 0.12).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from owstack.security.model_scan import containers
from owstack.security.model_scan.pickle_policy import verdict

SCHEMA = "schema.json"
TRUSTED_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
TRUSTED_BUILTINS = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool", "bytes", "bytearray", "complex"}
    | {"slice", "NoneType"}
)
#: node kinds whose own `__class__` is a wrapper (`type`, `function`, `partial`): their content is judged
WRAPPERS = frozenset({"TypeNode", "FunctionNode", "PartialNode"})
WRAPPER_CLASSES = frozenset({("builtins", "type"), ("functools", "partial")})
BYPASS_LOADERS = frozenset({"OperatorFuncNode", "MethodNode"})
MAX_NODES = 200_000


def schema(path: Path) -> Any:
    """The parsed `schema.json` of a skops zip (raises `ContainerError` when missing or not JSON)."""
    with path.open("rb") as fh:
        members = list(containers.zip_members(fh, lambda name, head: name == SCHEMA))
    if not members:
        raise containers.ContainerError("skops archive without schema.json")
    try:
        return json.loads(members[0].data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise containers.ContainerError(f"schema.json is not JSON: {exc}") from None


def is_skops(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return SCHEMA in zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    stack, seen = [value], 0
    while stack and seen < MAX_NODES:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _judge(module: str, name: str) -> str | None:
    """ "critical", "high" (outside skops' default trust) or None (trusted)."""
    if verdict(module, name) == "critical":
        return "critical"
    root = module.split(".")[0]
    if root in TRUSTED_PACKAGES or (root == "builtins" and name in TRUSTED_BUILTINS):
        return None
    return "high"


def untrusted(tree: Any) -> list[tuple[str, str]]:
    """(severity, description) of every node skops would not load without `trusted=`, or that runs code."""
    out: list[tuple[str, str]] = []
    for node in _nodes(tree):
        loader = node.get("__loader__")
        content = node.get("content")
        pairs: list[tuple[Any, Any]] = []
        wrapper = (node.get("__module__"), node.get("__class__")) in WRAPPER_CLASSES or node.get(
            "__class__"
        ) == "function"
        if "__module__" in node and not (loader in WRAPPERS and wrapper):
            pairs.append((node.get("__module__"), node.get("__class__")))
        if loader == "FunctionNode" and isinstance(content, dict):
            pairs.append((content.get("module_path"), content.get("function")))
        if loader in WRAPPERS and isinstance(content, dict) and "__module__" in content:
            pairs.append((content.get("__module__"), content.get("__class__")))
        for module, name in pairs:
            if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
                out.append(("high", f"a {loader} node with a malformed type name"))
                continue
            severity = _judge(module, name)
            if severity is not None:
                out.append((severity, f"{loader or 'a node'} builds {module}.{name}"))
        if loader in BYPASS_LOADERS:
            out.append(("high", f"{loader} (reached objects skops' trust check did not see: CVE-2025-54412/54413)"))
    return list(dict.fromkeys(out))
