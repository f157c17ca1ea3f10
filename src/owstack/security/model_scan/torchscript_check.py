"""The code of a TorchScript archive (`code/**/*.py`): which file operators it can reach.

`torch.jit.load` compiles the archive's `code/` files (TorchScript, a Python subset) and runs a class's
`__setstate__` while loading; the other methods run when the model is called. The source importer
(torch/csrc/jit/serialization/import_source.cpp) resolves `torch.NAME` to the operator `aten::NAME` and
`ops.NS.NAME` to `NS::NAME`; `getattr(torch, "NAME")` (a string literal only) and an alias (`t = torch`,
`a = ops.aten`, `f = torch.save`) reach the same operators (checked with torch 2.13). Of the 4,374
operators torch 2.13 registers, the ones that touch files are `aten::save` (writes any file: a
`torch.save(x, path)` in `__setstate__` writes it during `torch.jit.load`) and `aten::from_file` (reads
any file into a tensor, and maps it writable with `shared=True`); the list is `torchscript_ops` in
`security/data/pickle_imports.yaml`. The name of such an operator always appears in the source, as an
attribute or as getattr's literal, so every occurrence is reported: critical when it resolves to the
operator, high when it is an attribute of a value the scanner cannot resolve.

A mobile archive (`_save_for_lite_interpreter`) also holds `bytecode.pkl`, which the lite interpreter
runs instead of `code/`: its `operators` tables name each operator as a string (`'aten::save'`), so a
string constant there that names one of these operators is reported too, whatever `code/` says.
"""

from __future__ import annotations

import ast
import io
import re
from dataclasses import dataclass
from functools import cache

from owstack.security.data_files import load
from owstack.security.model_scan.pickle_vm import Events, Machine, PickleError

CODE_MEMBER = re.compile(r"[^/]+/code/.+\.py$")  # an archive's records all lie under its one top folder
BYTECODE_MEMBER = re.compile(r"(^|/)bytecode\.pkl$")


@dataclass(frozen=True, slots=True)
class CodeHit:
    severity: str
    op: str
    line: int
    why: str


@cache
def dangerous_ops() -> dict[str, str]:
    """`NS::NAME` -> what it does."""
    return {str(k): str(v) for k, v in load("pickle_imports")["torchscript_ops"].items()}


def _names() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for op in dangerous_ops():
        out.setdefault(op.split("::")[1], []).append(op)
    return out


def _literal_getattr(node: ast.AST) -> tuple[ast.AST, str] | None:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    ):
        return node.args[0], node.args[1].value
    return None


def _namespace(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """ "aten" for `torch`, "NS" for `ops.NS`, "ops" for `ops`, following aliases; None if unknown."""
    if isinstance(node, ast.Name):
        return {"torch": "aten", "ops": "ops"}.get(node.id) or aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        return node.attr if _namespace(node.value, aliases) == "ops" else None
    pair = _literal_getattr(node)
    if pair is not None and _namespace(pair[0], aliases) == "ops":
        return pair[1]
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Names bound anywhere in the file to `torch`, `ops` or `ops.NS` (flow-insensitive, to a fixpoint)."""
    aliases: dict[str, str] = {}
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None]
    for _ in range(8):
        before = dict(aliases)
        for node in assigns:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            ns = _namespace(node.value, aliases) if node.value is not None else None
            for target in targets:
                if isinstance(target, ast.Name) and ns is not None:
                    aliases[target.id] = ns
        if aliases == before:
            break
    return aliases


def scan_code(source: str) -> list[CodeHit]:
    """Every reference to a file operator in one code file; raises SyntaxError/ValueError if it does not parse."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    names = _names()
    hits: list[CodeHit] = []
    for node in ast.walk(tree):
        base: ast.AST
        if isinstance(node, ast.Attribute):
            base, name = node.value, node.attr
        elif (pair := _literal_getattr(node)) is not None:
            base, name = pair
        else:
            continue
        if name not in names:
            continue
        ns = _namespace(base, aliases)
        op = f"{ns}::{name}"
        line = getattr(node, "lineno", 0)
        if op in dangerous_ops():
            hits.append(CodeHit("critical", op, line, dangerous_ops()[op]))
        elif ns is None:
            what = " or ".join(names[name])
            hits.append(CodeHit("high", f"?.{name}", line, f"an alias the scanner cannot resolve may reach {what}"))
    return hits


def bytecode_ops(data: bytes) -> list[str]:
    """The file operators a lite-interpreter `bytecode.pkl` names (a pickle the machine cannot run gives
    nothing here: the pickle scan reports it)."""
    found: list[str] = []
    ops = dangerous_ops()
    events = Events(
        lambda *a: None, lambda *a: None, on_str=lambda text, pos: found.append(text) if text in ops else None
    )
    try:
        Machine(io.BytesIO(data), events).run()
    except PickleError:
        pass
    return list(dict.fromkeys(found))
