"""Every pickle in a byte string, run on the symbolic machine (`pickle_vm`), never unpickled.

What a loader executes is more than "the first pickle": legacy `torch.save` files hold five pickles in
a row (magic number, protocol, system info, the object, the storage keys) and then raw storage bytes;
`pickle.load` called in a loop reads as many pickles as a file holds; joblib writes raw array bytes
*inside* the pickle stream after each `NumpyArrayWrapper` (and a nested pickle for object arrays); and a
bytes constant may itself be a pickle handed to a loader. All of these are followed. A stream that does
not parse where a loader would read it is reported as an error, so that an unreadable file is never
taken for a clean one.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass, field

from owstack.security.model_scan.pickle_policy import verdict
from owstack.security.model_scan.pickle_vm import Events, Machine, PickleError, Value

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
TORCH_LEGACY_PICKLES = 5
MAX_NESTING = 4
MAX_PICKLES = 10_000
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_JOBLIB_FILE_WRAPPERS = frozenset(
    {("joblib.numpy_pickle", "NDArrayWrapper"), ("joblib.numpy_pickle_compat", "NDArrayWrapper")}
)
_JOBLIB_WRAPPERS = frozenset({_JOBLIB_WRAPPER, *_JOBLIB_FILE_WRAPPERS})
_RECONSTRUCTOR = ("copyreg", "_reconstructor")
_MAX_ARG_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Hit:
    """One thing a loader would do that the allowlist does not cover."""

    severity: str  # medium | high | critical
    what: str  # "os.system", "computed import", "extension code 42"
    offset: int
    detail: str = ""


@dataclass
class PickleReport:
    hits: list[Hit] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pickles: int = 0
    nested: int = 0
    trailing_bytes: int = 0
    segments: list[tuple[int, int]] = field(default_factory=list)
    opaque: list[tuple[int, int]] = field(default_factory=list)  # joblib array bytes inside a segment

    def merge(self, other: PickleReport, where: str) -> None:
        self.hits += [Hit(h.severity, h.what, h.offset, f"{where}{h.detail}") for h in other.hits]
        self.errors += [f"{where}{e}" for e in other.errors]
        self.nested += other.pickles + other.nested


class _Scan:
    """Runs the pickles of one buffer and collects hits; `depth` counts nested pickles."""

    def __init__(self, data: bytes, depth: int, base: int = 0) -> None:
        self.data = data
        self.stream = io.BytesIO(data)
        self.depth = depth
        self.base = base
        self.report = PickleReport()
        self.memo: dict[int, Value] = {}  # of the last pickle run

    def events(self) -> Events:
        return Events(
            on_import=self._on_import,
            on_computed_import=self._on_computed,
            on_build=self._on_build,
            on_call=self._on_call,
            on_extension=self._on_extension,
            on_bytes=self._on_bytes,
        )

    def _on_import(self, module: str, name: str, pos: int) -> None:
        severity = verdict(module, name)
        if severity is not None:
            self.report.hits.append(Hit(severity, f"{module}.{name}", self.base + pos))

    def _on_computed(self, pos: int, why: str) -> None:
        self.report.hits.append(Hit("critical", "computed import", self.base + pos, f"STACK_GLOBAL with {why}"))

    def _on_extension(self, code: int, pos: int) -> None:
        self.report.hits.append(
            Hit("high", f"extension code {code}", self.base + pos, "import through the copyreg extension registry")
        )

    def _on_bytes(self, data: bytes, pos: int) -> None:
        if self.depth >= MAX_NESTING or len(data) < 4 or data[0] != 0x80 or not 2 <= data[1] <= 5:
            return
        inner = scan_pickles(data, depth=self.depth + 1, base=0)
        if inner.pickles or inner.hits:
            inner.errors = []  # a bytes constant that only looks like a pickle is not an error
            self.report.merge(inner, f"pickle nested in a bytes constant at byte {self.base + pos}: ")

    def _on_call(self, callee: Value, args: Value, pos: int) -> None:
        """joblib replaces the object of a BUILD by the array it reads from the stream when that object
        is an instance of its array wrappers, whatever made it. Only a direct call of the class (or
        `copyreg._reconstructor(cls, ...)`, protocols 0 and 1) says where the raw bytes are; the class
        handed to any other callable (`torch._tensor._rebuild_from_type_v2(NumpyArrayWrapper, ...)`)
        makes an instance the machine cannot follow, and the bytes joblib skips would be read here as
        opcodes (or the opcodes joblib runs as array bytes)."""
        if callee.kind == "global" and (callee.module, callee.name) == _RECONSTRUCTOR:
            items = args.items[1:] if args.kind == "tuple" else args.items
        else:
            items = args.items
        for wrapper in _globals_in(items, _JOBLIB_WRAPPERS):
            self.report.hits.append(
                Hit(
                    "critical",
                    f"{wrapper.module}.{wrapper.name} passed to a call",
                    self.base + pos,
                    "a joblib array wrapper built indirectly: joblib reads raw array bytes from the pickle "
                    "stream after its BUILD, so what joblib runs next cannot be told from what a scanner reads",
                )
            )

    def _on_build(self, obj: Value, state: Value, pos: int) -> None:
        cls = _instance_class(obj)
        if cls is None:
            return
        if (cls.module, cls.name) in _JOBLIB_FILE_WRAPPERS:
            self._joblib_file(obj, state, pos)
        elif (cls.module, cls.name) == _JOBLIB_WRAPPER:
            self._skip_joblib_array(state, pos)

    def _joblib_file(self, obj: Value, state: Value, pos: int) -> None:
        """joblib < 0.10's `NDArrayWrapper`: its BUILD makes joblib call `numpy.load(filename,
        allow_pickle=True)` on another file (joblib/numpy_pickle_compat.py `NDArrayWrapper.read`), a pickle
        loaded from wherever `filename` points."""
        name = state.get("filename") if state.kind == "dict" else None
        if name is None and obj.args is not None and obj.args.kind == "tuple" and obj.args.items:
            name = obj.args.items[0]
        filename = name.const if name is not None and name.kind == "const" else None
        if not isinstance(filename, str):
            severity, where = "critical", "a file the scanner cannot name"
        else:
            parts = filename.replace("\\", "/").split("/")
            outside = filename.startswith(("/", "\\", "~")) or ".." in parts or ":" in filename
            severity, where = ("critical" if outside else "high"), repr(filename[:120])
        self.report.hits.append(
            Hit(
                severity,
                "joblib NDArrayWrapper",
                self.base + pos,
                f"joblib loads {where} with numpy.load(allow_pickle=True): a pickle from another file",
            )
        )

    def _skip_joblib_array(self, state: Value, pos: int) -> None:
        """Consume the bytes joblib wrote after a NumpyArrayWrapper (joblib/numpy_pickle.py `read_array`)."""
        dtype, shape = state.get("dtype"), state.get("shape")
        info = _dtype_info(dtype) if dtype is not None else None
        dims = [d.const for d in shape.items] if shape is not None and shape.kind == "tuple" else None
        if info is None or dims is None or not all(isinstance(d, int) and d >= 0 for d in dims):
            raise PickleError(f"joblib array at byte {pos}: dtype or shape not readable")
        itemsize, has_object = info
        if has_object:
            start = self.stream.tell()
            inner = _Scan(self.data[start:], self.depth + 1, self.base + start)
            inner.run_one()
            self.report.merge(inner.report, "")
            self.report.pickles += inner.report.pickles
            self.report.segments += inner.report.segments
            self.report.opaque.append((self.base + start, self.base + start + inner.stream.tell()))
            self.stream.seek(start + inner.stream.tell())
            return
        start = self.stream.tell()
        align = state.get("numpy_array_alignment_bytes")
        if align is not None and align.kind == "const" and align.const is not None:
            pad = self.stream.read(1)
            if len(pad) != 1:
                raise PickleError("joblib array padding missing")
            self.stream.seek(pad[0], io.SEEK_CUR)
        length = math.prod(dims) * itemsize
        if self.stream.tell() + length > len(self.data):
            raise PickleError(f"joblib array at byte {pos} runs past the end of the file")
        self.stream.seek(length, io.SEEK_CUR)
        self.report.opaque.append((self.base + start, self.base + self.stream.tell()))

    def run_one(self, memo: dict[int, Value] | None = None) -> Value:
        start = self.stream.tell()
        machine = Machine(self.stream, self.events(), memo)
        result = machine.run()
        self.memo = {**self.memo, **machine.memo}
        self.report.pickles += 1
        self.report.segments.append((self.base + start, self.base + self.stream.tell()))
        return result

    def run_all(self) -> PickleReport:
        legacy = False
        while self.stream.tell() < len(self.data) and self.report.pickles < MAX_PICKLES:
            start = self.stream.tell()
            if legacy and self.report.pickles >= TORCH_LEGACY_PICKLES:
                break  # the raw storages of a legacy torch file: read as bytes, never unpickled
            try:
                result = self._run_next(start)
            except PickleError as exc:
                if self.report.pickles == 0 or self.stream.tell() > start + 1 or legacy:
                    self.report.errors.append(f"not a loadable pickle at byte {self.base + start}: {exc}")
                self.report.trailing_bytes = len(self.data) - start
                break
            if self.report.pickles == 1 and result.kind == "const" and result.const == TORCH_LEGACY_MAGIC:
                legacy = True
        if self.report.pickles >= MAX_PICKLES and self.stream.tell() < len(self.data) and not legacy:
            self.report.errors.append(f"more than {MAX_PICKLES} pickles: the rest of the file is not analysed")
        if legacy and self.report.pickles < TORCH_LEGACY_PICKLES:
            self.report.errors.append(f"legacy torch file with {self.report.pickles} of 5 pickles")
        self.report.hits = list(dict.fromkeys(self.report.hits))
        return self.report

    def _run_next(self, start: int) -> Value:
        """The next pickle as a fresh `pickle.load` reads it, or, if it fetches memo entries it never
        stored, as one `Unpickler` whose `load()` is called again reads it (the memo of the pickles before)."""
        try:
            return self.run_one()
        except PickleError as exc:
            if not self.report.pickles or "memo value not found" not in str(exc):
                raise
        self.stream.seek(start)
        return self.run_one(self.memo)


def _instance_class(obj: Value) -> Value | None:
    """The class an object was made from: the callee, or `cls` of `copyreg._reconstructor(cls, base, state)`."""
    cls = obj.cls
    if obj.kind != "object" or cls is None or cls.kind != "global":
        return None
    if (cls.module, cls.name) == _RECONSTRUCTOR and obj.args is not None and obj.args.items:
        first = obj.args.items[0]
        return first if first.kind == "global" else None
    return cls


def _globals_in(items: list[Value], wanted: frozenset[tuple[str, str]]) -> list[Value]:
    """The globals among `wanted` anywhere in `items` and the containers they hold (an object made by a
    call is not entered: a call that received the class was reported when it was made)."""
    found: list[Value] = []
    seen: set[int] = set()
    todo = [(v, 0) for v in items]
    while todo:
        value, depth = todo.pop()
        if id(value) in seen or depth > _MAX_ARG_DEPTH:
            continue
        seen.add(id(value))
        if value.kind == "global" and (value.module, value.name) in wanted:
            found.append(value)
        todo += [(v, depth + 1) for v in value.items]
        todo += [(v, depth + 1) for v in value.mapping.values()]
    return found


def _dtype_info(dtype: Value) -> tuple[int, bool] | None:
    """(itemsize, has_object) of a `numpy.dtype(name, align, copy)` call with its BUILD state."""
    if dtype.kind != "object" or dtype.args is None or not dtype.args.items:
        return None
    name = dtype.args.items[0]
    if name.kind != "const" or not isinstance(name.const, str):
        return None
    flags, elsize = 0, -1
    if dtype.state is not None:
        # numpy's `dtype.__setstate__` takes `hasobject` from the flags of a version 3+ state (8 or 9 items)
        # and works it out from the fields of an older one: a flag that is not a constant (`int("1")`) or an
        # older state would let joblib unpickle the bytes read here as raw array data
        state = dtype.state.items if dtype.state.kind == "tuple" else []
        consts = [s.const if s.kind == "const" else None for s in state]
        version = consts[0] if consts else None
        if len(consts) < 8 or not isinstance(version, int) or version < 3 or not isinstance(consts[7], int):
            return None
        if not isinstance(consts[5], int) or isinstance(consts[7], bool):
            return None
        flags, elsize = consts[7], consts[5]
    try:
        import numpy

        parsed = numpy.dtype(name.const)
    except (TypeError, ValueError):
        return None
    itemsize = parsed.itemsize if parsed.itemsize > 0 else elsize
    if itemsize <= 0:
        return None
    return itemsize, bool(parsed.hasobject or flags & 1)


def scan_pickles(data: bytes, *, depth: int = 0, base: int = 0) -> PickleReport:
    """Run every pickle in `data` (see the module docstring); never raises for bad input."""
    return _Scan(data, depth, base).run_all()


# -- legacy tar torch.save (torch/serialization.py `legacy_load`) ---------------------------------------

ELEMENT_SIZES = {
    "Double": 8,
    "Float": 4,
    "Half": 2,
    "Long": 8,
    "Int": 4,
    "Short": 2,
    "Char": 1,
    "Byte": 1,
    "Bool": 1,
    "BFloat16": 2,
    "ComplexDouble": 16,
    "ComplexFloat": 8,
    "QUInt8": 1,
    "QInt8": 1,
    "QInt32": 4,
    "QUInt4x2": 1,
    "QUInt2x4": 1,
}
TORCH_TAR_MEMBERS = frozenset({"storages", "tensors", "pickle"})


def _count(value: Value) -> int:
    if value.kind != "const" or not isinstance(value.const, int) or not 0 <= value.const <= MAX_PICKLES:
        raise PickleError("record count is not a small integer")
    return int(value.const)


def _element_size(args: Value) -> int:
    cls = args.items[2] if args.kind == "tuple" and len(args.items) == 3 else None
    size = ELEMENT_SIZES.get(cls.name.removesuffix("Storage")) if cls is not None and cls.kind == "global" else None
    if size is None:
        raise PickleError("storage record without a known storage type")
    return size


def _skip(scan: _Scan, length: int) -> bytes:
    start = scan.stream.tell()
    if length < 0 or start + length > len(scan.data):
        raise PickleError(f"raw record at byte {start} runs past the end")
    return scan.stream.read(length)


def scan_torch_tar_member(name: str, data: bytes) -> PickleReport:
    """The pickles of a member of a legacy tar `torch.save` file, read as `legacy_load` reads them: in
    `storages` and `tensors` each record is a pickle followed by raw bytes, so the pickles after the
    first record are only found by skipping those bytes exactly."""
    if name not in ("storages", "tensors"):
        return scan_pickles(data)
    scan = _Scan(data, 0)
    try:
        for _ in range(_count(scan.run_one())):
            args = scan.run_one()
            if name == "storages":
                (numel,) = struct.unpack("<q", _skip(scan, 8))
                _skip(scan, numel * _element_size(args))
            else:
                (ndim,) = struct.unpack("<i", _skip(scan, 4))
                _skip(scan, 4 + 16 * ndim + 8)
        if name == "storages":
            scan.run_one()  # the storage views
    except PickleError as exc:
        scan.report.errors.append(f"{name}: {exc}")
    return scan.report
