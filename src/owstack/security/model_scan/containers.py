"""Containers around pickles, opened with limits: zip (PyTorch checkpoints, `.npz`), `.npy`, compressed joblib.

A zip bomb or a compression bomb is a finding, never a pass: members whose declared size, compression
ratio or actual decompressed size exceed the limits are reported as unscannable, and decompression
always stops at the limit whatever the headers claim. Limits are generous for real checkpoints (PyTorch
stores tensors uncompressed; pickles compress a few times at most).
"""

from __future__ import annotations

import ast
import bz2
import io
import lzma
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

MAX_MEMBER_BYTES = 512 * 1024 * 1024  # one pickle or .npy read from a container
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # all members read from one container
MAX_RATIO = 200  # uncompressed / compressed, for members above RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_MEMBERS = 100_000
_CHUNK = 1 << 20
_STORAGE_MEMBER = re.compile(r"(^|/)data/\d+$")


class ContainerError(ValueError):
    """A container that cannot be read within the limits (a bomb, a truncated or malformed archive)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    data: bytes


def _ratio_problem(name: str, size: int, compressed: int) -> str | None:
    if size > RATIO_FLOOR and size > MAX_RATIO * max(compressed, 1):
        return f"{name}: compression ratio {size // max(compressed, 1)}:1 exceeds {MAX_RATIO}:1 (zip bomb)"
    return None


def zip_members(fh: IO[bytes], wanted: Any, *, pytorch_view: bool = False) -> Iterator[Member]:
    """The members `wanted(name, head) -> bool` selects, read with the limits; raises `ContainerError`
    for a bomb anywhere in the archive (also in members that are not read: a loader would read them).
    With `pytorch_view`, also the members PyTorch's own zip reader finds when they differ (`torch.load`
    reads any file by content; see `_as_pytorch_reads_it`)."""
    try:
        archive = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ContainerError(f"not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ContainerError(f"{len(infos)} members, more than {MAX_MEMBERS}")
        declared = 0
        escaping = [info.filename for info in infos if _escapes(info)]
        for info in infos:
            problem = _ratio_problem(info.filename, info.file_size, info.compress_size)
            if problem:
                raise ContainerError(problem)
            declared += info.file_size
        if declared > 64 * MAX_TOTAL_BYTES:
            raise ContainerError(f"members declare {declared} bytes in all (zip bomb)")
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            if _STORAGE_MEMBER.search(info.filename) and not _npy_storage(archive, info):
                continue
            data = _read_member(archive, info, wanted)
            if data is None:
                continue
            total += len(data)
            if total > MAX_TOTAL_BYTES:
                raise ContainerError(f"members decompress to more than {MAX_TOTAL_BYTES} bytes")
            yield Member(info.filename, data)
        spliced = _as_pytorch_reads_it(fh, archive) if pytorch_view else None
        if escaping:  # after the members: their pickles are judged too
            raise ContainerError(f"zip member {escaping[0]!r} points outside the archive (path traversal or link)")
    if spliced is not None:
        try:
            for member in zip_members(spliced, wanted):
                yield Member(f"(where PyTorch reads it) {member.name}", member.data)
        except ContainerError as exc:
            raise ContainerError(f"the archive PyTorch reads (offsets from the start of the file): {exc}") from None


def _escapes(info: zipfile.ZipInfo) -> bool:
    """A member that extracting writes outside the target folder (absolute, drive letter, `..`; `zipfile`
    cleans these names, `unzip`, Java's and older extractors do not) or a symbolic link (Unix mode in the
    high bits of external_attr), which the tar reader refuses likewise."""
    name = info.orig_filename.replace("\\", "/")
    parts = name.split("/")
    drive = len(name) > 1 and name[1] == ":"
    return name.startswith("/") or drive or ".." in parts or stat.S_ISLNK(info.external_attr >> 16)


_END_RECORD = b"PK\x05\x06"


class _Spliced(io.RawIOBase):
    """The first `length` bytes of `fh`, then `tail`."""

    def __init__(self, fh: IO[bytes], length: int, tail: bytes) -> None:
        self.fh, self.length, self.tail, self.pos = fh, length, tail, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        size = self.length + len(self.tail)
        self.pos = max(0, {0: offset, 1: self.pos + offset, 2: size + offset}[whence])
        return self.pos

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        out = b""
        if self.pos < self.length:
            self.fh.seek(self.pos)
            out = self.fh.read(min(want, self.length - self.pos))
        if len(out) < want and self.pos + len(out) >= self.length:
            at = self.pos + len(out) - self.length
            out += self.tail[at : at + want - len(out)]
        buffer[: len(out)] = out
        self.pos += len(out)
        return len(out)


def _as_pytorch_reads_it(fh: IO[bytes], archive: zipfile.ZipFile) -> IO[bytes] | None:
    """The archive as PyTorch's reader (miniz) sees it when the file has bytes before the archive that
    its end record describes (an archive appended to another): miniz takes the central directory offset
    and every member offset from the start of the file, where Python's `zipfile` shifts them past the
    prefix. `torch.load` then unpickles the *first* archive's data.pkl, which `zipfile` never shows.
    Returned as the bytes up to that directory's end plus the end record, which `zipfile` reads with no
    shift; None when there is no prefix."""
    try:
        endrec = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return None
    if not endrec:
        return None
    offset, size = int(endrec[zipfile._ECD_OFFSET]), int(endrec[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
    if int(archive.start_dir) == offset:
        return None
    if endrec[zipfile._ECD_SIGNATURE] != _END_RECORD:  # type: ignore[attr-defined]
        raise ContainerError("zip64 archive with bytes before it: PyTorch and zipfile read different members")
    count = min(int(endrec[zipfile._ECD_ENTRIES_TOTAL]), 0xFFFF)  # type: ignore[attr-defined]
    tail = struct.pack("<4s4H2LH", _END_RECORD, 0, 0, count, count, size, offset, 0)
    return io.BufferedReader(_Spliced(fh, offset + size, tail))


#: what reading a zip member can raise (corrupt, truncated, unsupported compression, encrypted)
_MEMBER_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError)


def _npy_storage(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Whether a member named like a PyTorch storage (`data/0`) is a `.npy`: torch reads storages as raw
    bytes, but `numpy.load` opens any zip as an `.npz` whose member `data/0` is `read_array`ed (and
    unpickled with allow_pickle=True) when it starts with the `.npy` magic, whatever its name."""
    try:
        with archive.open(info) as member:
            return member.read(len(NPY_MAGIC)) == NPY_MAGIC
    except _MEMBER_ERRORS as exc:
        raise ContainerError(f"{info.filename}: {exc}") from None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, wanted: Any) -> bytes | None:
    if info.file_size > MAX_MEMBER_BYTES:
        if wanted(info.filename, b""):
            raise ContainerError(f"{info.filename}: {info.file_size} bytes, more than {MAX_MEMBER_BYTES}")
        return None
    try:
        with archive.open(info) as member:
            head = member.read(16)
            if not wanted(info.filename, head):
                return None
            chunks = [head]
            size = len(head)
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                if size > MAX_MEMBER_BYTES or size > MAX_RATIO * max(info.compress_size, 1) + RATIO_FLOOR:
                    raise ContainerError(f"{info.filename}: decompresses past its limits (zip bomb)")
                chunks.append(chunk)
    except _MEMBER_ERRORS as exc:
        raise ContainerError(f"{info.filename}: {exc}") from None
    return b"".join(chunks)


# -- numpy .npy ---------------------------------------------------------------------------------------

NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True, slots=True)
class NpyHeader:
    descr: Any
    shape: tuple[int, ...]
    data_offset: int
    has_object: bool


def _descr_has_object(descr: Any) -> bool:
    """numpy's own answer (`read_array` unpickles exactly when `dtype.hasobject`): the spellings are many
    ("O", "|O8", "object", "object_", structured and sub-array dtypes), so no pattern is trusted."""
    from numpy.lib.format import descr_to_dtype

    try:
        return bool(descr_to_dtype(descr).hasobject)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, MemoryError, RecursionError) as exc:
        raise ContainerError(f".npy descr {descr!r:.60} is not a dtype numpy reads: {exc}") from None


def npy_header(data: bytes) -> NpyHeader:
    """Parse a `.npy` header (numpy/lib/format.py) without numpy; raises `ContainerError`."""
    if not data.startswith(NPY_MAGIC) or len(data) < 10:
        raise ContainerError("not a .npy file")
    major = data[6]
    if major == 1:
        (length,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3):
        if len(data) < 12:
            raise ContainerError("truncated .npy header")
        (length,), start = struct.unpack("<I", data[8:12]), 12
    else:
        raise ContainerError(f".npy format version {major} unknown")
    if length > 1_000_000 or start + length > len(data):
        raise ContainerError(".npy header too long or truncated")
    try:
        header = ast.literal_eval(data[start : start + length].decode("latin-1" if major < 3 else "utf-8"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise ContainerError(f".npy header is not a literal: {exc}") from None
    if not isinstance(header, dict) or "descr" not in header or not isinstance(header.get("shape"), tuple):
        raise ContainerError(".npy header lacks descr or shape")
    descr = header["descr"]
    return NpyHeader(descr, header["shape"], start + length, _descr_has_object(descr))


# -- compressed streams (joblib) -----------------------------------------------------------------------

_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00", "lzma"),  # joblib's prefix: properties 0x5d, then a dictionary size of any value
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x28\xb5\x2f\xfd", "zstd"),  # pandas.read_pickle("x.pkl.zst") (zstandard): recognised, never read
    (b"ZF", "zlib-joblib"),
    (b"\x78\x01", "zlib"),
    (b"\x78\x5e", "zlib"),
    (b"\x78\x9c", "zlib"),
    (b"\x78\xda", "zlib"),
)


def compression(head: bytes) -> str | None:
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            return name
    return None


def _engine(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind in ("xz", "lzma"):
        return lzma.LZMADecompressor()
    if kind == "lz4":  # joblib's compress="lz4": LZ4 frames, read with python-lz4 when it is installed
        try:
            import lz4.frame  # type: ignore[import-not-found,import-untyped,unused-ignore]
        except ImportError:
            raise ContainerError("lz4 compression is not read: the lz4 package is not installed") from None
        return lz4.frame.LZ4FrameDecompressor()
    if kind == "zstd":
        raise ContainerError("zstd compression is not read by the scanner (pandas.read_pickle reads .zst files)")
    raise ContainerError(f"{kind} compression is not supported by the scanner")


def _feed(engine: Any, kind: str, data: bytes, max_length: int) -> bytes:
    if kind in ("gzip", "zlib"):
        return bytes(engine.decompress(data, max_length))
    return bytes(engine.decompress(data, max_length=max_length))  # bz2, lzma, lz4: the same interface


def _zfile_offset(data: bytes) -> int:
    """Where the zlib data of joblib's "ZF" files starts (joblib/numpy_pickle_compat.py `read_zfile`): after
    "ZF" and the length in hex padded to len(hex(2**64)) = 19 characters, and one more space written by
    joblib <= 0.8.4."""
    return 22 if data[21:22] == b" " else 21


def starts_stream(head: bytes, kind: str) -> bool:
    """Whether `head` begins a valid stream of `kind` (a few KiB decompressed, nothing more): text that
    merely starts with "ZF" or "BZh" is not a compressed model."""
    if kind == "zlib-joblib":
        head, kind = head[_zfile_offset(head) :], "zlib"
    try:
        _feed(_engine(kind), kind, head[: 1 << 16], 4096)
    except ContainerError:
        return kind in ("lz4", "zstd")  # a 4-byte magic is evidence enough: reported as unscannable, never skipped
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError):
        return False
    return True


def decompress(data: bytes, kind: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    """Decompress with an output cap and a ratio cap; raises `ContainerError` (a bomb, lz4 without the
    lz4 package, bad data).
    Concatenated streams (gzip members, bz2 and xz streams, lz4 frames) are all read, as `gzip.open`, `bz2.open` and
    `lzma.open` read them: a pickle split across two gzip members is one pickle to the loader."""
    if kind == "zlib-joblib":  # joblib < 0.10: "ZF" + 19-character length field, then zlib
        data, kind = data[_zfile_offset(data) :], "zlib"
    cap = min(limit, MAX_RATIO * len(data) + RATIO_FLOOR)
    out = b""
    rest = data
    while rest and len(out) <= cap:
        engine = _engine(kind)
        try:
            out += _feed(engine, kind, rest, cap + 1 - len(out))
        except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, RuntimeError) as exc:
            raise ContainerError(f"{kind} data is corrupt: {exc}") from None
        if not engine.eof or kind == "zlib":
            break
        rest = engine.unused_data
        if kind == "gzip" and not rest.startswith(b"\x1f\x8b"):
            break  # gzip.open ignores trailing zero padding and stops at anything else with an error
    if len(out) > cap:
        raise ContainerError(f"{kind} data decompresses past {cap} bytes (compression bomb)")
    return out


# -- tar (legacy torch.save, .nemo, .tar.gz model folders) ----------------------------------------------


def _open_tar(fh: IO[bytes]) -> Any:
    import tarfile

    try:
        return tarfile.open(fileobj=fh, mode="r:")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ContainerError(f"not a readable tar archive: {exc}") from None


def tar_members(fh: IO[bytes]) -> Iterator[Member]:
    """The regular members of a tar archive, with the member limits; a link, or a member whose path is
    absolute or climbs out with `..` (extracting it writes outside the target folder), raises."""
    import tarfile

    with _open_tar(fh) as archive:
        try:
            infos = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ContainerError(f"tar archive is corrupt: {exc}") from None
        if len(infos) > MAX_MEMBERS:
            raise ContainerError(f"{len(infos)} members, more than {MAX_MEMBERS}")
        for info in infos:
            parts = info.name.replace("\\", "/").split("/")
            if info.name.startswith(("/", "\\")) or ".." in parts or (info.issym() or info.islnk()):
                raise ContainerError(f"tar member {info.name!r} points outside the archive (path traversal)")
            if not info.isfile():
                continue
            storage = _STORAGE_MEMBER.search(info.name) is not None
            if info.size > MAX_MEMBER_BYTES and not storage:
                raise ContainerError(f"{info.name}: {info.size} bytes, more than {MAX_MEMBER_BYTES}")
            handle = archive.extractfile(info)
            if handle is None:
                continue
            if storage and handle.read(len(NPY_MAGIC)) != NPY_MAGIC:
                continue  # raw tensor bytes; a `.npy` under that name is read like any other member
            if info.size > MAX_MEMBER_BYTES:
                raise ContainerError(f"{info.name}: {info.size} bytes, more than {MAX_MEMBER_BYTES}")
            handle.seek(0)
            yield Member(info.name, handle.read(MAX_MEMBER_BYTES))
