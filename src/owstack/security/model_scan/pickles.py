"""Pickle files read at the opcode level (pickletools), never unpickled.

Unpickling imports and calls whatever the stream names (GLOBAL, STACK_GLOBAL, INST, then REDUCE/NEWOBJ/
BUILD). The scan collects every import and compares it with a small allowlist of what model weights
need (tensor and storage rebuild functions, containers, numpy reconstruction); anything else is a finding,
and a STACK_GLOBAL whose arguments are not plain string constants is reported as unresolvable.
PyTorch zip checkpoints are opened as zip files and each `*.pkl` member is scanned the same way.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

MAX_MEMBER_BYTES = 512 * 1024 * 1024

_TORCH_REBUILD = {
    f"_rebuild_{n}"
    for n in (
        "tensor",
        "tensor_v2",
        "tensor_v3",
        "parameter",
        "parameter_with_state",
        "qtensor",
        "sparse_tensor",
        "nested_tensor",
        "device_tensor_from_numpy",
        "meta_tensor_no_storage",
        "wrapper_subclass",
        "device_tensor_from_cpu_tensor",
        "xla_tensor",
        "mtia_tensor",
    )
}
_STORAGES = {
    f"{k}Storage"
    for k in (
        "Float",
        "Half",
        "BFloat16",
        "Double",
        "Long",
        "Int",
        "Short",
        "Char",
        "Byte",
        "Bool",
        "ComplexFloat",
        "ComplexDouble",
        "QInt8",
        "QUInt8",
        "QInt32",
        "Untyped",
        "TypedStorage",
    )
} | {"UntypedStorage", "TypedStorage"}
_DTYPES = {
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "half",
    "float",
    "double",
    "long",
    "int",
    "short",
    "float8_e4m3fn",
    "float8_e5m2",
    "Size",
    "device",
    "strided",
    "sparse_coo",
    "contiguous_format",
    "preserve_format",
}
ALLOWED: dict[str, frozenset[str]] = {
    "collections": frozenset({"OrderedDict", "defaultdict", "deque", "Counter"}),
    "torch._utils": frozenset(_TORCH_REBUILD),
    "torch._tensor": frozenset({"_rebuild_from_type_v2"}),
    "torch": frozenset(_STORAGES | _DTYPES),
    "torch.storage": frozenset({"UntypedStorage", "TypedStorage"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy._core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "numpy": frozenset({"ndarray", "dtype"}),
    "numpy.dtypes": frozenset(
        {f"{t}DType" for t in ("Float16", "Float32", "Float64", "Int8", "Int16", "Int32", "Int64", "UInt8", "Bool")}
    ),
    "builtins": frozenset(
        {
            "set",
            "frozenset",
            "slice",
            "complex",
            "bytearray",
            "range",
            "int",
            "float",
            "bool",
            "str",
            "tuple",
            "list",
            "dict",
            "bytes",
        }
    ),
    "__builtin__": frozenset({"set", "frozenset", "slice", "complex", "bytearray"}),
    "_codecs": frozenset({"encode"}),
    "copy_reg": frozenset({"_reconstructor"}),
    "copyreg": frozenset({"_reconstructor"}),
}
_CRITICAL_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "runpy",
        "importlib",
        "pty",
        "socket",
        "shutil",
        "webbrowser",
        "pickle",
        "_pickle",
        "marshal",
        "types",
        "ctypes",
        "code",
        "codeop",
        "commands",
        "pdb",
        "timeit",
        "platform",
        "asyncio",
        "multiprocessing",
        "requests",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "telnetlib",
        "httplib",
        "_posixsubprocess",
        "signal",
        "tempfile",
        "pathlib",
        "glob",
        "zipimport",
        "dill",
        "cloudpickle",
        "joblib",
        "torch.hub",
        "operator",
        "functools",
        "_io",
        "io",
        "bdb",
        "trace",
        "profile",
        "cProfile",
        "distutils",
        "setuptools",
        "pip",
        "venv",
        "sqlite3",
        "xmlrpc",
        "imaplib",
        "poplib",
        "nntplib",
    }
)
_CRITICAL_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "type",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "apply",
        "execfile",
        "reload",
        "file",
    }
)
_CRITICAL_NAMES = frozenset(
    {
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("numpy", "load"),
        ("numpy.lib.npyio", "load"),
        ("torch.storage", "_load_from_bytes"),
        ("torch.jit", "load"),
        ("torch._C", "_jit_pass_lower_all_tuples"),
    }
)
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_PUSH_OPS = frozenset(
    {
        "MARK",
        "EMPTY_TUPLE",
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "BINPERSID",
        "PERSID",
    }
)


@dataclass
class PickleReport:
    """What one pickle stream imports. `imports` are (module, name, byte offset)."""

    imports: list[tuple[str, str, int]] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)
    error: str | None = None
    pickles: int = 0


def verdict(module: str, name: str) -> str | None:
    """None if (module, name) is allowed, else "critical" or "high"."""
    if name in ALLOWED.get(module, frozenset()):
        return None
    root = module.split(".")[0]
    if (module in ("builtins", "__builtin__") and name in _CRITICAL_BUILTINS) or (module, name) in _CRITICAL_NAMES:
        return "critical"
    if module in _CRITICAL_MODULES or root in _CRITICAL_MODULES:
        return "critical"
    return "high"


def _scan_one(stream: IO[bytes], report: PickleReport) -> None:
    recent: list[Any] = []
    memo: dict[int, Any] = {}
    for opcode, arg, pos in pickletools.genops(stream):
        name = opcode.name
        if name in _STRING_OPS:
            recent.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            report.imports.append((module, attr, pos or 0))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            args = recent[-2:] if len(recent) >= 2 else [None, None]
            del recent[-2:]
            mod_arg, name_arg = args[0], args[1]
            if isinstance(mod_arg, str) and isinstance(name_arg, str):
                report.imports.append((mod_arg, name_arg, pos or 0))
            else:
                report.unresolved.append(pos or 0)
            recent.append(None)
        elif name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
            key = len(memo) if name == "MEMOIZE" else int(str(arg))
            memo[key] = recent[-1] if recent else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(str(arg))))
        elif name == "POP" and recent:
            recent.pop()
        elif name in _PUSH_OPS:
            recent.append(None)
    report.pickles += 1


def scan_stream(stream: IO[bytes], size: int) -> PickleReport:
    """Scan every pickle in a stream (legacy torch files hold several in a row, then raw data)."""
    report = PickleReport()
    while stream.tell() < size:
        start = stream.tell()
        if stream.read(1) != b"\x80" and report.pickles:
            break  # raw tensor data after the pickles
        stream.seek(start)
        try:
            _scan_one(stream, report)
        except Exception as exc:
            if report.pickles == 0:
                report.error = f"malformed pickle at byte {stream.tell()}: {type(exc).__name__}: {exc}"
            break
    return report


def scan_file(fh: IO[bytes], size: int) -> dict[str, PickleReport]:
    """Reports per pickle: one for a plain pickle (key ""), one per `*.pkl` member of a torch zip."""
    head = fh.read(4)
    fh.seek(0)
    if head.startswith(b"PK\x03\x04"):
        out: dict[str, PickleReport] = {}
        with zipfile.ZipFile(fh) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".pkl"):
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    out[info.filename] = PickleReport(error=f"member of {info.file_size} bytes not scanned")
                    continue
                data = archive.read(info)
                out[info.filename] = scan_stream(io.BytesIO(data), len(data))
        return out
    return {"": scan_stream(fh, size)}
