"""Which files of a folder are model files, and what format each one is: by content, the name second.

A loader does not care about a file's name (`torch.load("notes.txt")` unpickles it), so a folder scan
cannot either: besides the usual model suffixes (also compound ones such as `.pkl.gz`), every other file
is sniffed, and one whose bytes are a pickle, a zip or tar archive, a compressed stream, a `.npy`, an
HDF5 or a GGUF file is scanned as what it is. Hidden files are scanned too. Symbolic links are never
followed out of the scanned folder: a link whose target lies outside is reported, not read.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from owstack.security.model_scan import containers, hf_config, template_files
from owstack.security.model_scan.pickle_policy import verdict
from owstack.security.model_scan.pickle_vm import Events, Machine, PickleError, Value

PICKLE_SUFFIXES = frozenset(
    {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".jbl", ".npy", ".npz", ".dill", ".sav", ".model"}
)
MODEL_SUFFIXES = PICKLE_SUFFIXES | {
    ".gguf",
    ".safetensors",
    ".h5",
    ".hdf5",
    ".keras",
    ".onnx",
    ".pb",
    ".tar",
    ".nemo",
    ".mar",
    ".skops",
}
# the suffixes pandas.read_pickle infers a compression from (also .zst) and joblib's own (.lz4)
COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".lzma", ".z", ".zip", ".zst", ".zstd", ".lz4", ".tgz"})
SNIFF_BYTES = 1 << 20  # how much of a file with another name is read to tell whether it is a pickle
_SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv"})
_GGML_MAGICS = (b"lmgg", b"fmgg", b"tjgg", b"ggml", b"ggmf", b"ggjt")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path
    outside: str | None = None  # the target of a symbolic link that leaves the scanned folder


def is_model_name(name: str) -> bool:
    lower = name.lower()
    if hf_config.is_config(lower):
        return True
    suffixes = Path(lower).suffixes
    if not suffixes:
        return template_files.is_template(lower)
    if suffixes[-1] in MODEL_SUFFIXES or template_files.is_template(lower):
        return True
    return len(suffixes) > 1 and suffixes[-1] in COMPRESSED_SUFFIXES and suffixes[-2] in MODEL_SUFFIXES


def walk(root: Path) -> Iterator[Candidate]:
    """Every model file under `root` (or `root` itself), links confined to `root`."""
    if not root.is_dir():
        yield Candidate(root)
        return
    top = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS:
                continue
            if (here / d).is_symlink():
                target = _outside(here / d, top)
                if target is not None:
                    yield Candidate(here / d, target)
                continue  # a link inside the folder: its target is walked where it lies
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            if path.is_symlink():
                target = _outside(path, top)
                if target is not None:
                    yield Candidate(path, target)
                    continue
            if is_model_name(name) or _looks_like_model(path):
                yield Candidate(path)


def _outside(link: Path, top: Path) -> str | None:
    target = link.resolve()
    return None if target == top or target.is_relative_to(top) else str(target)


def _looks_like_model(path: Path) -> bool:
    """A regular file without a model suffix whose content is a model format (or a pickle of any
    protocol; one still parsing at the end of the sniffed bytes is read in full, up to the file limit)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return False  # a FIFO or a device would block or never end
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
            kind = content_format(head)
            if kind is not None and kind.startswith("joblib-"):
                return containers.starts_stream(head, kind.removeprefix("joblib-"))
            if kind is not None or safetensors_like(head) or pickle_like(head):
                return True
            if len(head) < SNIFF_BYTES or not pickle_like(head, at_end=True):
                return False
            return pickle_like(head + fh.read(containers.MAX_MEMBER_BYTES - len(head)))
    except OSError:
        return False


def content_format(head: bytes) -> str | None:
    """The format the first bytes show, or None (protocol 0/1 pickles have no magic: `pickle_like`)."""
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(containers.NPY_MAGIC):
        return "npy"
    if head.startswith(HDF5_MAGIC):
        return "hdf5"
    if head[:4] in _GGML_MAGICS:
        return "ggml"
    if (len(head) > 262 and head[257:262] == b"ustar") or _v7_tar(head):
        return "tar"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    codec = containers.compression(head)
    if codec == "lzma" and not head.startswith(b"\x5d\x00\x00") and not containers.starts_stream(head, codec):
        return None  # joblib reads any "\x5d\x00" as LZMA (a 4 KiB dictionary is "\x5d\x00\x10"); raw data is not
    return f"joblib-{codec}" if codec is not None else None


def _v7_tar(head: bytes) -> bool:
    """A pre-POSIX tar header (no "ustar" magic): `tarfile`, and so torch's `legacy_load`, opens it by
    its checksum alone."""
    import tarfile

    if len(head) < 512 or head[257:262] == b"ustar":
        return False
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def starts_no_pickle(head: bytes, *, complete: bool) -> bool:
    """Whether a loader's `pickle.load` fails on these bytes before it imports anything: no protocol
    marker, and the symbolic machine stops on an error with no import (nor extension or computed import)
    and before running out of `head` (unless `head` is the whole file). Such bytes run no code."""
    if content_format(head) is not None or safetensors_like(head):
        return False
    imports: list[int] = []
    events = Events(
        on_import=lambda module, name, pos: imports.append(pos),
        on_computed_import=lambda pos, why: imports.append(pos),
        on_extension=lambda code, pos: imports.append(pos),
    )
    stream = io.BytesIO(head)
    try:
        Machine(stream, events).run()
    except (PickleError, UnicodeDecodeError):
        return not imports and (complete or stream.tell() < len(head))
    return False


def safetensors_like(head: bytes) -> bool:
    """An 8-byte little-endian header length under the format's 100 MB cap, then a JSON object."""
    return len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= 100_000_000


def _nameable(module: str, name: str) -> bool:
    """Whether a GLOBAL's two lines could name something `find_class` imports: prose has spaces."""
    return bool(module) and bool(name) and not any(c.isspace() or c == "\0" for c in module + name)


def pickle_like(head: bytes, *, at_end: bool = False) -> bool:
    """Whether bytes without a magic number are a pickle (protocols 0 and 1 have none): they import
    something critical (even if they fail later, the import has run by then), or the symbolic machine
    runs them to a STOP that either ends the bytes or follows an import off the allowlist; text such as
    "N.B. ..." (NONE, STOP, then prose) is not. With `at_end`: whether they parse as a pickle up to their
    very end (a prefix of a longer pickle)."""
    imports: list[str] = []
    called: list[bool] = []

    def on_import(module: str, name: str, pos: int) -> None:
        if _nameable(module, name):  # "copyright holders" is no module: CPython fails before importing
            imports.append(verdict(module, name) or "allowed")

    def on_call(callee: Value, args: Value, pos: int) -> None:
        if callee.kind == "global" and _nameable(callee.module, callee.name):
            called.append(verdict(callee.module, callee.name) is not None)

    stream = io.BytesIO(head)
    try:
        Machine(stream, Events(on_import, lambda pos, why: imports.append("critical"), on_call=on_call)).run()
    except (PickleError, UnicodeDecodeError):
        if at_end:
            return stream.tell() >= len(head)
        return "critical" in imports or any(called)  # a call of an import off the allowlist has run
    if at_end:
        return False
    return stream.tell() == len(head) or any(v != "allowed" for v in imports)
