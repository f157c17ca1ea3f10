"""Tensors of a PyTorch zip checkpoint checked against the storages they view, without loading anything.

`torch.load` rebuilds each tensor as a strided view of a storage (`torch._utils._rebuild_tensor_v2(storage,
storage_offset, size, stride, ...)`, `_rebuild_tensor_v3` with a dtype, `_rebuild_tensor`), the storage
being the persistent id `('storage', torch.FloatStorage, key, location, numel)` whose bytes are the
record `data/<key>` beside the pickle. A view whose last element lies past the storage, a negative size,
stride or offset, or a storage declaring more bytes than its record holds is a malformed tensor: recent
torch refuses it (`set_` checks the storage bounds), loaders without that check read out of bounds.
"""

from __future__ import annotations

import io
import posixpath

from owstack.security.model_scan.pickle_vm import Events, Machine, PickleError, Value
from owstack.security.model_scan.pickles import ELEMENT_SIZES

MAX_ISSUES = 10
_REBUILDERS = frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"})
#: bytes per element of the dtypes `_rebuild_tensor_v3` names (torch/_utils.py `_element_size`)
DTYPE_SIZES = {
    **dict.fromkeys(("float64", "double", "int64", "long", "uint64", "complex64", "cfloat"), 8),
    **dict.fromkeys(("float32", "float", "int32", "int", "uint32", "complex32"), 4),
    **dict.fromkeys(("float16", "half", "bfloat16", "int16", "short", "uint16"), 2),
    **dict.fromkeys(("int8", "uint8", "bool", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz"), 1),
    **dict.fromkeys(("float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "quint8", "qint8"), 1),
    "complex128": 16,
    "cdouble": 16,
    "qint32": 4,
}


def problems(pickle_name: str, data: bytes, records: dict[str, int]) -> list[str]:
    """What is wrong with the tensors the pickle `pickle_name` of a zip checkpoint rebuilds; `records`
    maps the archive's member names to their sizes. A pickle the machine cannot run gives nothing here
    (the pickle scan reports it)."""
    calls: list[tuple[Value, Value]] = []
    events = Events(lambda *a: None, lambda *a: None, on_call=lambda callee, args, pos: calls.append((callee, args)))
    try:
        Machine(io.BytesIO(data), events).run()
    except PickleError:
        return []
    folder = posixpath.join(posixpath.dirname(pickle_name), posixpath.splitext(posixpath.basename(pickle_name))[0])
    out: list[str] = []
    for callee, args in calls:
        if callee.kind == "global" and callee.module == "torch._utils" and callee.name in _REBUILDERS:
            problem = _check(callee.name, args, folder, records)
            if problem is not None and problem not in out:
                out.append(problem)
    return out[:MAX_ISSUES]


def _ints(value: Value | None) -> list[int] | None:
    if value is None or value.kind != "tuple":
        return None
    items = [v.const if v.kind == "const" else None for v in value.items]
    return items if all(isinstance(i, int) and not isinstance(i, bool) for i in items) else None  # type: ignore[return-value]


def _storage(value: Value, folder: str, records: dict[str, int]) -> tuple[str, int, int, int] | None:
    """(key, declared bytes, record bytes, element size) of a `('storage', type, key, location, numel)` id."""
    pid = value.args if value.kind == "persistent" else None
    parts = pid.items if pid is not None and pid.kind == "tuple" else []
    if len(parts) != 5 or parts[1].kind != "global":
        return None
    key, numel = parts[2].const, parts[4].const
    name = parts[1].name.removesuffix("Storage")
    size = 1 if name == "Untyped" else ELEMENT_SIZES.get(name)
    record = records.get(f"{folder}/{key}")
    if not isinstance(key, str) or not isinstance(numel, int) or size is None or record is None:
        return None
    return key, numel * size, record, size


def _check(rebuilder: str, args: Value, folder: str, records: dict[str, int]) -> str | None:
    items = args.items if args.kind == "tuple" else []
    if len(items) < 4:
        return None
    storage = _storage(items[0], folder, records)
    offset = items[1].const if items[1].kind == "const" else None
    size, stride = _ints(items[2]), _ints(items[3])
    if storage is None or not isinstance(offset, int) or size is None or stride is None:
        return None
    key, declared, record, itemsize = storage
    if rebuilder == "_rebuild_tensor_v3" and len(items) > 6 and items[6].kind == "global":
        itemsize = DTYPE_SIZES.get(items[6].name, itemsize)
    where = f"tensor on storage {key!r}"
    if declared > record:
        return f"{where}: the storage declares {declared} bytes, its record {folder}/{key} holds {record}"
    if offset < 0 or len(size) != len(stride) or any(d < 0 for d in size + stride):
        return f"{where}: negative or mismatched offset {offset}, size {size}, stride {stride}"
    if 0 in size:
        return None
    last = offset + sum((d - 1) * s for d, s in zip(size, stride, strict=True))
    if (last + 1) * itemsize > declared:
        return (
            f"{where}: offset {offset}, size {size}, stride {stride} reach byte {(last + 1) * itemsize}"
            f" of a {declared}-byte storage (a malformed tensor that can read out of bounds in older loaders)"
        )
    return None
