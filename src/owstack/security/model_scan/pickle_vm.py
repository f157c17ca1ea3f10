"""A symbolic pickle machine: every opcode of protocols 0-5 executed on symbolic values, nothing imported.

Reading opcodes in isolation is how scanners were bypassed: a `STACK_GLOBAL` whose module and name
come from the memo, from `DUP`/`POP`/`POP_MARK` games or from inside a frame is resolved wrongly by
a scanner that only remembers "the last two strings". This machine keeps the real stack, the mark
stack and the memo exactly as CPython's `Unpickler` does (`Lib/pickle.py`, `_Unpickler.load_*`), so the
module and name of every import are the ones Python would import, or are reported as computed when
they come from a call (never guessed). Each import and each call is handed to the caller through
`Events`; BUILD on a joblib array wrapper asks the caller to consume the raw array bytes that joblib
writes inside the pickle stream.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

MAX_OPS = 20_000_000
#: the machine keeps every value it makes (memo, containers): a stream of `]a]a...` or `]]]...` would make it
#: hold tens of millions of them (gigabytes) before MAX_OPS; real model pickles stay far below these
MAX_STACK = 2_000_000
MAX_CONTAINERS = 3_000_000


class PickleError(ValueError):
    """The stream is not a pickle CPython would load (or breaks a limit of this machine)."""


@dataclass(eq=False, slots=True)
class Value:
    """A symbolic value. `const` holds str/bytes/int/float/bool/None when known; containers hold items."""

    kind: str  # const | tuple | list | dict | set | global | object | persistent | unknown
    const: Any = None
    items: list[Any] = field(default_factory=list)
    mapping: dict[Any, Value] = field(default_factory=dict)
    module: str = ""
    name: str = ""
    cls: Value | None = None
    args: Value | None = None
    state: Value | None = None

    def get(self, key: str) -> Value | None:
        return self.mapping.get(key)


UNKNOWN_KIND = "unknown"


class _Shared(list[Any]):
    """The one empty item list of scalar values (constants, globals, unknowns): the ops never append to it."""


_NO_ITEMS: list[Any] = _Shared()
_NO_MAPPING: dict[Any, Value] = {}


def const(v: Any) -> Value:
    return Value("const", const=v, items=_NO_ITEMS, mapping=_NO_MAPPING)


def unknown() -> Value:
    return Value(UNKNOWN_KIND, items=_NO_ITEMS, mapping=_NO_MAPPING)


@dataclass
class Events:
    """What the machine reports. `on_import(module, name, pos)`; `on_computed_import(pos, why)`;
    `on_call(callee, args, pos)` for REDUCE/NEWOBJ/OBJ/INST; `on_build(obj, state, pos)`;
    `on_extension(code, pos)` for EXT1/2/4; `on_bytes(value, pos)` for every bytes constant, `on_str(value,
    pos)` for every string constant."""

    on_import: Callable[[str, str, int], None]
    on_computed_import: Callable[[int, str], None]
    on_call: Callable[[Value, Value, int], None] = lambda callee, args, pos: None
    on_build: Callable[[Value, Value, int], None] = lambda obj, state, pos: None
    on_extension: Callable[[int, int], None] = lambda code, pos: None
    on_bytes: Callable[[bytes, int], None] = lambda data, pos: None
    on_str: Callable[[str, int], None] = lambda text, pos: None


_CONST_OPS = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "FLOAT",
        "BINFLOAT",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
    }
)
_FIXED = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


_STRTOL = re.compile(rb"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n$")


def _int_nl(stream: IO[bytes]) -> int | bool:
    """INT as CPython's unpicklers read it: `00`/`01` are False/True, anything else `int(text, 0)` (the
    Python unpickler) or C's `strtol(text, 0)` before it (the C one: `010` is octal 8), so hex, octal,
    binary and underscores load (`I0x10`), where pickletools' reader accepts base 10 only."""
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline found when trying to read decimalnl_short")
    if line == b"00\n":
        return False
    if line == b"01\n":
        return True
    try:
        return int(line, 0)
    except ValueError:
        match = _STRTOL.match(line)
        if match is None:
            raise
    sign, digits = match.groups()
    if digits[:2].lower() == b"0x":
        value = int(digits[2:], 16)
    else:
        value = int(digits, 8 if len(digits) > 1 and digits.startswith(b"0") else 10)
    return -value if sign == b"-" else value


def _long_nl(stream: IO[bytes]) -> int:
    """LONG as CPython's `load_long` reads it: an optional trailing `L`, then `int(text, 0)`."""
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise ValueError("no newline found when trying to read decimalnl_long")
    text = line[:-1]
    if text.endswith(b"L"):
        text = text[:-1]
    return int(text, 0)


_READERS = {"INT": _int_nl, "LONG": _long_nl}
_CODES = {op.code.encode("latin-1"): op for op in pickletools.opcodes}


def genops(stream: IO[bytes]) -> Iterator[tuple[pickletools.OpcodeInfo, Any, int]]:
    """`pickletools.genops` with the arguments of INT and LONG read as CPython's unpickler reads them."""
    while True:
        pos = stream.tell()
        code = stream.read(1)
        opcode = _CODES.get(code)
        if opcode is None:
            raise ValueError("pickle exhausted before seeing STOP" if not code else f"opcode {code!r} unknown")
        reader = _READERS.get(opcode.name)
        if reader is not None:
            arg: Any = reader(stream)
        else:
            arg = None if opcode.arg is None else opcode.arg.reader(stream)
        yield opcode, arg, pos
        if code == b".":
            return


def fix_import(module: str, name: str) -> tuple[str, str]:
    """Python 2 names mapped as `Unpickler(fix_imports=True)` does (`__builtin__` -> `builtins`, ...)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class Machine:
    """Run one pickle (up to its STOP) from `stream` on symbolic values."""

    def __init__(self, stream: IO[bytes], events: Events, memo: dict[int, Value] | None = None) -> None:
        self.stream = stream
        self.events = events
        self.stack: list[Value] = []
        self.metastack: list[list[Value]] = []
        self.memo: dict[int, Value] = dict(memo or {})  # `Unpickler.load()` called again keeps its memo
        self.proto = 0
        self.ops = 0
        self.containers = 0

    def run(self) -> Value:
        try:
            for opcode, arg, pos in genops(self.stream):
                self.ops += 1
                if self.ops > MAX_OPS:
                    raise PickleError(f"more than {MAX_OPS} opcodes")
                if len(self.stack) > MAX_STACK or len(self.metastack) > MAX_STACK:
                    raise PickleError(f"stack deeper than {MAX_STACK}")
                if opcode.name in _CONTAINER_OPS:
                    self.containers += 1
                    if self.containers > MAX_CONTAINERS:
                        raise PickleError(f"more than {MAX_CONTAINERS} containers and objects")
                if opcode.name == "STOP":
                    return self._pop()
                self._step(opcode.name, arg, pos or 0)
        except PickleError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, EOFError, OverflowError, UnicodeDecodeError) as exc:
            raise PickleError(f"{type(exc).__name__}: {exc}") from None
        raise PickleError("pickle ends without STOP")

    # -- stack helpers ------------------------------------------------------------------------------

    def _pop(self) -> Value:
        if not self.stack:
            raise PickleError("unpickling stack underflow")
        return self.stack.pop()

    def _pop_mark(self) -> list[Value]:
        if not self.metastack:
            raise PickleError("could not find MARK")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def _top(self) -> Value:
        if not self.stack:
            raise PickleError("unpickling stack underflow")
        return self.stack[-1]

    # -- the opcodes --------------------------------------------------------------------------------

    def _step(self, op: str, arg: Any, pos: int) -> None:
        if op in _CONST_OPS:
            value = _FIXED.get(op, arg)
            if isinstance(value, bytes | bytearray):
                self.events.on_bytes(bytes(value), pos)
            elif isinstance(value, str):
                self.events.on_str(value, pos)
            self.stack.append(const(value))
        elif op in _SIMPLE:
            _SIMPLE[op](self)
        elif op in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            key = len(self.memo) if op == "MEMOIZE" else int(arg)
            if key < 0:
                raise PickleError("negative PUT argument")
            self.memo[key] = self._top()
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            key = int(arg)
            if key not in self.memo:
                raise PickleError(f"memo value not found at index {key}")
            self.stack.append(self.memo[key])
        elif op == "PROTO":
            self.proto = int(arg)
            if not 0 <= self.proto <= 5:
                raise PickleError(f"unsupported pickle protocol: {self.proto}")
        elif op == "FRAME":
            pass
        elif op in ("GLOBAL", "INST"):
            self._global(op, pos)
        elif op == "STACK_GLOBAL":
            name, module = self._pop(), self._pop()
            if _is_str(module) and _is_str(name):
                self.stack.append(self._import(module.const, name.const, pos))
            else:
                self.events.on_computed_import(pos, f"module {_describe(module)}, name {_describe(name)}")
                self.stack.append(Value("global", module="?", name="?"))
        elif op in ("EXT1", "EXT2", "EXT4"):
            self.events.on_extension(int(arg), pos)
            self.stack.append(unknown())
        elif op in ("PERSID", "BINPERSID"):
            pid = self._pop() if op == "BINPERSID" else const(arg)
            self.stack.append(Value("persistent", args=pid))  # what `persistent_load(pid)` returns
        else:
            self._call_op(op, arg, pos)

    def _call_op(self, op: str, arg: Any, pos: int) -> None:
        if op == "REDUCE":
            args, func = self._pop(), self._pop()
            self.stack.append(self._called(func, args, pos))
        elif op == "NEWOBJ":
            args, cls = self._pop(), self._pop()
            self.stack.append(self._called(cls, args, pos))
        elif op == "NEWOBJ_EX":
            _kwargs, args, cls = self._pop(), self._pop(), self._pop()
            self.stack.append(self._called(cls, args, pos))
        elif op == "OBJ":
            items = self._pop_mark()
            if not items:
                raise PickleError("OBJ without a class")
            self.stack.append(self._called(items[0], Value("tuple", items=items[1:]), pos))
        elif op == "BUILD":
            state = self._pop()
            obj = self._top()
            obj.state = state
            self.events.on_build(obj, state, pos)
        else:
            raise PickleError(f"opcode {op} not understood")

    def _global(self, op: str, pos: int) -> None:
        module, name = self._read_pair(pos)
        callee = self._import(module, name, pos)
        if op == "GLOBAL":
            self.stack.append(callee)
        else:
            args = Value("tuple", items=self._pop_mark())
            self.stack.append(self._called(callee, args, pos))

    def _read_pair(self, pos: int) -> tuple[str, str]:
        """GLOBAL/INST arguments read again from the bytes, as CPython does (two lines, UTF-8):
        pickletools joins them with a space, which is ambiguous when a line holds one."""
        here = self.stream.tell()
        self.stream.seek(pos + 1)
        module = self.stream.readline()
        name = self.stream.readline()
        self.stream.seek(here)
        if not module.endswith(b"\n") or not name.endswith(b"\n"):
            raise PickleError("GLOBAL without two lines")
        return module[:-1].decode("utf-8"), name[:-1].decode("utf-8")

    def _import(self, module: str, name: str, pos: int) -> Value:
        if self.proto < 3:
            module, name = fix_import(module, name)
        self.events.on_import(module, name, pos)
        return Value("global", module=module, name=name, items=_NO_ITEMS, mapping=_NO_MAPPING)

    def _called(self, callee: Value, args: Value, pos: int) -> Value:
        self.events.on_call(callee, args, pos)
        return Value("object", cls=callee, args=args)

    # -- containers ---------------------------------------------------------------------------------

    def _setitems(self, target: Value, items: list[Value]) -> None:
        if len(items) % 2:
            raise PickleError("odd number of items for SETITEMS")
        if target.kind == "dict":
            for k, v in zip(items[::2], items[1::2], strict=True):
                if k.kind == "const":
                    target.mapping[k.const] = v


def _is_str(v: Value) -> bool:
    return v.kind == "const" and isinstance(v.const, str)


def _describe(v: Value) -> str:
    if v.kind == "const":
        return repr(v.const)[:40]
    if v.kind == "object" and v.cls is not None:
        return f"the result of calling {v.cls.module}.{v.cls.name}"
    return f"a {v.kind} value"


def _discard(_: object) -> None:
    return None


def _mark(m: Machine) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _pop_op(m: Machine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m._pop_mark()  # CPython: POP with an empty stack pops a mark


def _dup(m: Machine) -> None:
    m.stack.append(m._top())


def _tuple_n(n: int) -> Callable[[Machine], None]:
    def op(m: Machine) -> None:
        if len(m.stack) < n:
            raise PickleError("unpickling stack underflow")
        items = m.stack[len(m.stack) - n :] if n else []
        del m.stack[len(m.stack) - n :]
        m.stack.append(Value("tuple", items=items))

    return op


def _push_marked(m: Machine, kind: str) -> None:
    items = m._pop_mark()  # replaces m.stack: bind the list only after it
    m.stack.append(Value(kind, items=items))


def _dict_from_mark(m: Machine) -> None:
    d = Value("dict")
    m._setitems(d, m._pop_mark())
    m.stack.append(d)


def _setitem(m: Machine) -> None:
    v, k = m._pop(), m._pop()
    m._setitems(m._top(), [k, v])


def _setitems(m: Machine) -> None:
    items = m._pop_mark()
    m._setitems(m._top(), items)


def _append(m: Machine) -> None:
    v = m._pop()
    _extend(m._top(), [v])


def _appends(m: Machine) -> None:
    items = m._pop_mark()
    _extend(m._top(), items)


def _additems(m: Machine) -> None:
    items = m._pop_mark()
    _extend(m._top(), items)


def _extend(target: Value, items: list[Value]) -> None:
    if target.items is not _NO_ITEMS:  # CPython fails on appending to a constant or a class
        target.items.extend(items)


_CONTAINER_OPS = frozenset(
    {
        "EMPTY_LIST",
        "EMPTY_TUPLE",
        "EMPTY_DICT",
        "EMPTY_SET",
        "LIST",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "DICT",
        "FROZENSET",
        "REDUCE",
        "NEWOBJ",
        "NEWOBJ_EX",
        "OBJ",
        "INST",
        "PERSID",
        "BINPERSID",
    }
)

_SIMPLE: dict[str, Callable[[Machine], None]] = {
    "MARK": _mark,
    "POP": _pop_op,
    "POP_MARK": lambda m: _discard(m._pop_mark()),
    "DUP": _dup,
    "EMPTY_LIST": lambda m: m.stack.append(Value("list")),
    "EMPTY_TUPLE": lambda m: m.stack.append(Value("tuple")),
    "EMPTY_DICT": lambda m: m.stack.append(Value("dict")),
    "EMPTY_SET": lambda m: m.stack.append(Value("set")),
    "LIST": lambda m: _push_marked(m, "list"),
    "TUPLE": lambda m: _push_marked(m, "tuple"),
    "FROZENSET": lambda m: _push_marked(m, "set"),
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "DICT": _dict_from_mark,
    "SETITEM": _setitem,
    "SETITEMS": _setitems,
    "APPEND": _append,
    "APPENDS": _appends,
    "ADDITEMS": _additems,
    "NEXT_BUFFER": lambda m: m.stack.append(unknown()),
    "READONLY_BUFFER": lambda m: _discard(m._top()),
}
