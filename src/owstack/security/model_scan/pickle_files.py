"""Pickle-bearing files to findings: plain pickles (protocols 0-5, several per file), legacy and zip
PyTorch checkpoints, numpy `.npy`/`.npz`, joblib (plain or compressed).

Two engines look at every pickle: owstack's symbolic machine with an allowlist (`pickles`), and
fickling's symbolic interpreter (Trail of Bits, https://github.com/trailofbits/fickling) as a second
opinion whose "likely/overtly malicious" verdicts are reported too. A file either gets a verdict from
a complete analysis or an `OWS-MDL-050` finding saying why it could not be analysed: unknown is never
reported as clean.
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from owstack.security.findings import ModelFinding, model_finding
from owstack.security.model_scan import archive_code, containers, hf_config, tensor_bounds, torchscript_check
from owstack.security.model_scan.discover import (
    PICKLE_SUFFIXES,
    SNIFF_BYTES,
    content_format,
    pickle_like,
    starts_no_pickle,
)
from owstack.security.model_scan.pickle_policy import verdict
from owstack.security.model_scan.pickles import (
    TORCH_TAR_MEMBERS,
    PickleReport,
    scan_pickles,
    scan_torch_tar_member,
)

MAX_FILE_BYTES = containers.MAX_MEMBER_BYTES
FICKLING_MAX_BYTES = 8 * 1024 * 1024
_PICKLE_MEMBER_SUFFIXES = (".pkl", ".pickle")
_ARCHIVE_SUFFIXES = frozenset({".tar", ".zip", ".gz", ".bz2", ".xz", ".nemo"})
MAX_DEPTH = 3  # archives inside archives
# Every byte a pickle without a PROTO opcode can start with (protocols 0 and 1): a member whose first byte is
# one is read and kept only if `pickle_like` says it is a pickle. pandas.read_pickle("x.zip") unpickles the
# archive's only member whatever its name, and a protocol 0 pickle may start with `I1\n0` (INT, POP).
_PROTOCOL0_STARTS = frozenset(bytes([op.code.encode("latin-1")[0]]) for op in pickletools.opcodes if op.proto < 2)
# The pickle suffix raw weights also use (OpenVINO's `.bin` beside its `.xml`, CTranslate2's `model.bin`),
# and the `.bin` names transformers, diffusers, peft and accelerate pass to `torch.load`, which stay pickles.
_RAW_SUFFIXES = frozenset({".bin"})
_TORCH_BIN = re.compile(
    r"^(diffusion_)?(pytorch_model|adapter_model|training_args|optimizer|scheduler)([-._].*)?\.bin$"
)


@dataclass
class Outcome:
    """Reports per part of a file ("" for the file itself, else a member name) and container problems."""

    fmt: str
    reports: dict[str, PickleReport] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, bytes] = field(default_factory=dict)
    parts: int = 0  # pickles and arrays analysed
    code: dict[str, bytes] = field(default_factory=dict)  # TorchScript code/ files (`torchscript_check`)
    tensor_problems: list[str] = field(default_factory=list)  # views past their storage (`tensor_bounds`)
    not_pickle: bool = False  # raw bytes on which `pickle.load` fails before importing anything
    carried: list[str] = field(default_factory=list)  # native libraries and Python source (`archive_code`)
    targets: list[tuple[str, str]] = field(default_factory=list)  # (member, Hydra `_target_` rated critical)
    remote: list[tuple[str, str]] = field(default_factory=list)  # (member, auto_map entry into another repository)


def analyse(path: Path, fmt: str) -> Outcome:
    """Read and analyse a file of format `fmt` (pickle, pytorch-zip, npz, npy, tar, joblib-<codec>)."""
    out = Outcome(fmt)
    try:
        if fmt in ("pytorch-zip", "npz", "zip", "tar"):
            with path.open("rb") as fh:
                (_tar if fmt == "tar" else _zip)(out, fh, "", 0)
            if fmt == "tar":
                _tar_header_pickle(out, path)
            if not out.parts:
                out.problems.append(f"{fmt} archive without any pickle or .npy member")
            elif fmt == "pytorch-zip":
                _tensor_bounds(out, path)
            return out
        if fmt == "pickle" and raw_weights_name(path.name):
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
            if starts_no_pickle(head, complete=len(head) == path.stat().st_size):
                out.not_pickle = True
                return out
        if path.stat().st_size > MAX_FILE_BYTES:
            out.problems.append(f"file larger than {MAX_FILE_BYTES} bytes is not analysed")
            return out
        data = path.read_bytes()
        if fmt.startswith("joblib-"):
            _blob(out, "", data, 0, pickle_named=True)
        else:
            _analyse_bytes(out, "", data)
    except containers.ContainerError as exc:
        out.problems.append(str(exc))
    except OSError as exc:
        out.problems.append(f"unreadable: {exc.strerror or exc}")
    return out


def analyse_data(data: bytes, name: str) -> Outcome:
    """Analyse bytes that a loader hands to `torch.load` or `pickle.load` (a pickle, a torch zip, ...)."""
    out = Outcome("embedded")
    try:
        _blob(out, name, data, 0, pickle_named=True)
    except containers.ContainerError as exc:
        out.problems.append(str(exc))
    return out


def worst_hit(outcome: Outcome) -> str | None:
    """The worst severity of an analysis ("high" for one that could not complete), None if clean."""
    severities = {h.severity for r in outcome.reports.values() for h in r.hits}
    if outcome.problems or any(r.errors for r in outcome.reports.values()) or not outcome.parts:
        severities.add("high")
    for level in ("critical", "high", "medium"):
        if level in severities:
            return level
    return None


TAR_AS_PICKLE = "(the tar header read as a pickle)"


def _tar_header_pickle(out: Outcome, path: Path, label: str = TAR_AS_PICKLE) -> None:
    """A tar archive is also a pickle when its first member's name is pickle opcodes: `pickle.load`,
    `joblib.load` and `numpy.load(allow_pickle=True)` read the file from byte 0, where the name is, and
    never look at the members. The header is run as a pickle too; imports of names that CPython could
    import (no NUL, dotted identifiers) and computed imports are reported."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        data = fh.read(min(size, SNIFF_BYTES))
        report = scan_pickles(data)
        if size > len(data) and pickle_like(data, at_end=True):
            data += fh.read(MAX_FILE_BYTES - len(data))  # still parsing at the end of the sniffed bytes
            report = scan_pickles(data)
    report.hits = [h for h in report.hits if _importable(h.what) or h.what == "computed import"]
    report.errors = []
    if report.hits:
        out.reports[label] = report
        out.data[label] = data


AS_PICKLE = "(the file read as a pickle)"


def as_pickle(path: Path) -> Outcome:
    """A file of another format under a name `torch.load`, `pickle.load`, `joblib.load` or `numpy.load`
    is given (`.pt`, `.bin`, `.pkl`, ...): those read it from byte 0 as a pickle (torch.load does when it is no
    zip), so a GGUF, ONNX, HDF5 or safetensors file whose first bytes are also pickle opcodes runs them. The
    bytes are run as a pickle; imports CPython could make and computed imports are reported."""
    out = Outcome("pickle")
    try:
        _tar_header_pickle(out, path, AS_PICKLE)
    except OSError:
        pass
    return out


def _importable(what: str) -> bool:
    return all(part.isidentifier() for part in what.split("."))


def raw_weights_name(name: str) -> bool:
    """A name raw, non-pickle weights may have (a PyTorch checkpoint's name is not one: `torch.load` reads it)."""
    lower = name.lower()
    return Path(lower).suffix in _RAW_SUFFIXES and not _TORCH_BIN.match(lower)


def _tensor_bounds(out: Outcome, path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        records = {info.filename: info.file_size for info in archive.infolist()}
    for name, data in out.data.items():
        if name.endswith(".pkl"):
            out.tensor_problems += [f"{name}: {p}" for p in tensor_bounds.problems(name, data, records)]


def _zip(out: Outcome, fh: IO[bytes], prefix: str, depth: int) -> None:
    code: dict[str, bytes] = {}
    names: set[str] = set()
    python: list[str] = []
    for member in containers.zip_members(fh, _wanted, pytorch_view=True):
        names.add(member.name)
        if torchscript_check.CODE_MEMBER.match(member.name):
            code[member.name] = member.data
        else:
            python += _side(out, prefix + member.name, member.data)
            _blob(out, prefix + member.name, member.data, depth, pickle_named=_pickle_named(member.name))
    for name, data in code.items():  # TorchScript code only where torch.jit.load finds it: beside data.pkl
        if f"{name.split('/')[0]}/data.pkl" in names:
            out.code[prefix + name] = data
        else:
            python += _side(out, prefix + name, data)
            _blob(out, prefix + name, data, depth, pickle_named=False)
    _python_run(out, python, names)


def _python_run(out: Outcome, python: list[str], names: set[str]) -> None:
    out.carried += [f"{name} (Python source)" for name in python if archive_code.runs_python(name, names)]


def _tar(out: Outcome, fh: IO[bytes], prefix: str, depth: int) -> None:
    members = list(containers.tar_members(fh))
    legacy_torch = {m.name for m in members} >= TORCH_TAR_MEMBERS
    python: list[str] = []
    for member in members:
        if legacy_torch and member.name in TORCH_TAR_MEMBERS:
            out.parts += 1
            out.reports[prefix + member.name] = scan_torch_tar_member(member.name, member.data)
            out.data[prefix + member.name] = member.data
        else:
            python += _side(out, prefix + member.name, member.data)
            _blob(out, prefix + member.name, member.data, depth, pickle_named=_pickle_named(member.name))
    _python_run(out, python, {m.name for m in members})


def _side(out: Outcome, name: str, data: bytes) -> list[str]:
    """Native libraries an archive carries and Hydra targets in its configs; the Python members are returned
    (reported when the archive says a loader runs them: `_python_run`)."""
    kind = archive_code.code_kind(name, data[:16])
    if kind == "native library":
        out.carried.append(f"{name} ({kind})")
    elif kind is not None:
        return [name]
    elif archive_code.is_config(name):
        config = archive_code.parse_config(name, data)
        out.targets += [(name, target) for target in archive_code.dangerous_targets(config)]
        if hf_config.is_config(PurePosixPath(name).name):
            out.remote += [(name, ref) for ref in hf_config.remote_code(config)]
    return []


def _blob(out: Outcome, name: str, data: bytes, depth: int, *, pickle_named: bool) -> None:
    """A member or a decompressed stream, by content: a nested archive or stream is opened in turn."""
    kind = content_format(data[:512])
    if kind in ("zip", "tar") or (kind or "").startswith("joblib-"):
        if depth >= MAX_DEPTH:
            out.problems.append(f"{name or 'file'}: archives nested more than {MAX_DEPTH} deep")
        elif kind == "zip":
            _zip(out, io.BytesIO(data), f"{name}/" if name else "", depth + 1)
        elif kind == "tar":
            _tar(out, io.BytesIO(data), f"{name}/" if name else "", depth + 1)
        else:
            inner = containers.decompress(data, (kind or "").removeprefix("joblib-"))
            _blob(out, name, inner, depth + 1, pickle_named=pickle_named)
    elif kind in ("pickle", "npy") or pickle_named or pickle_like(data):
        _analyse_bytes(out, name, data)


def _pickle_named(name: str) -> bool:
    return Path(name.lower()).suffix in PICKLE_SUFFIXES or not name


def _wanted(name: str, head: bytes) -> bool:
    if torchscript_check.CODE_MEMBER.match(name) or archive_code.code_kind(name, head) is not None:
        return True
    if archive_code.is_config(name) or archive_code.CODE_LOADER_MARKERS.search(name):
        return True
    lower = name.lower()
    if lower.endswith(_PICKLE_MEMBER_SUFFIXES) or lower.endswith(".npy"):
        return True
    if _pickle_named(name) or Path(lower).suffix in _ARCHIVE_SUFFIXES:
        return True
    kind = content_format(head)
    if kind in ("pickle", "npy", "zip") or (kind or "").startswith("joblib-"):
        return True
    return head[:1] in _PROTOCOL0_STARTS  # read, then kept only if `pickle_like` says it is one


def _analyse_bytes(out: Outcome, name: str, data: bytes) -> None:
    out.parts += 1
    if data.startswith(containers.NPY_MAGIC):
        try:
            header = containers.npy_header(data)
        except containers.ContainerError as exc:
            out.problems.append(f"{name or 'file'}: {exc}")
            return
        if not header.has_object:
            out.notes.append(f"{name or 'file'}: numeric array {header.descr!r} {header.shape}, no pickle")
            return
        out.notes.append(f"{name or 'file'}: object array: numpy loads it only with allow_pickle=True")
        report = scan_pickles(data[header.data_offset :], base=header.data_offset)
    else:
        report = scan_pickles(data)
        out.targets += [(name or "pickle", target) for target in archive_code.pickled_targets(data)]
    out.reports[name] = report
    out.data[name] = data


def _reviewed_only(pickled: Any) -> bool:
    """Whether every import fickling sees is on owstack's allowlist or a reviewed library name: fickling
    rates names such as numpy's `__randomstate_ctor` or `torch.jit._pickle.build_intlist` as overtly
    malicious, which owstack's reviewed list settles; any other import keeps fickling's verdict."""
    for node in pickled.properties.imports:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            return False
        if any(verdict(node.module, alias.name) not in (None, "medium") for alias in node.names):
            return False
    return True


def second_opinion(
    data: bytes, segments: list[tuple[int, int]], opaque: list[tuple[int, int]] | None = None
) -> list[str]:
    """fickling's verdict on each pickle: messages for `LIKELY_OVERTLY_MALICIOUS` and above (unless every
    import it sees is one owstack allows or has reviewed). A pickle with joblib array bytes inside
    (`opaque`) is left out, since fickling would read those bytes as opcodes (a nested object-array pickle
    is one of the segments, judged on its own)."""
    from fickling.analysis import Severity, check_safety
    from fickling.fickle import Pickled

    messages: list[str] = []
    for start, end in segments:
        if end - start > FICKLING_MAX_BYTES or any(start <= a and b <= end for a, b in opaque or []):
            continue
        try:
            pickled = Pickled.load(data[start:end])
            results = check_safety(pickled)
            if results.severity >= Severity.LIKELY_OVERTLY_MALICIOUS and _reviewed_only(pickled):
                continue
        except Exception:  # fickling is the second opinion; owstack's own machine already ruled on this
            continue
        if results.severity >= Severity.LIKELY_OVERTLY_MALICIOUS:
            for analysis in results.detailed_results().get("AnalysisResult", {}).items():
                messages.append(f"byte {start}: fickling {results.severity.name}: {analysis[0]}: {analysis[1]}")
    return messages


def findings(rel: str, digest: str, outcome: Outcome) -> list[ModelFinding]:
    """The findings of an analysed pickle-bearing file."""
    fmt = outcome.fmt

    def make(rule: str, message: str, **kw: object) -> ModelFinding:
        return model_finding(rule, rel, message[:400], sha256=digest, fmt=fmt, **kw)  # type: ignore[arg-type]

    if outcome.not_pickle:
        return [make("OWS-MDL-051", "not a pickle: pickle.load fails on its first bytes before importing anything")]
    out: list[ModelFinding] = [make("OWS-MDL-050", p) for p in outcome.problems]
    for carried in outcome.carried:
        out.append(make("OWS-MDL-029", f"{carried}: code the archive carries for its loader or server to run"))
    for member, target in outcome.targets:
        message = f"{member}: Hydra _target_ {target!r}, imported and called by hydra.utils.instantiate on load"
        out.append(make("OWS-MDL-032", message, executes=target))
    for member, ref in outcome.remote:
        message = f"{member}: auto_map {ref}: trust_remote_code=True downloads and runs code from another repository"
        out.append(make("OWS-MDL-033", message, executes=ref))
    out += [make("OWS-MDL-031", p) for p in outcome.tensor_problems]
    out += _code_findings(make, outcome.code)
    for name, data in outcome.data.items():
        if torchscript_check.BYTECODE_MEMBER.search(name):
            for op in torchscript_check.bytecode_ops(data):
                message = f"{name}: the lite interpreter's bytecode calls {op}: {torchscript_check.dangerous_ops()[op]}"
                out.append(make("OWS-MDL-027", message, executes=op))
    for member, report in outcome.reports.items():
        where = f"{member}: " if member else ""
        out += _report_findings(make, where, report)
        critical = any(h.severity == "critical" for h in report.hits)
        if not critical:
            for message in second_opinion(outcome.data[member], report.segments, report.opaque):
                out.append(make("OWS-MDL-023", f"{where}{message}"))
    for note in outcome.notes:
        if "object array" in note:
            out.append(make("OWS-MDL-041", note))
    if not out and outcome.reports:
        pickles = sum(r.pickles + r.nested for r in outcome.reports.values())
        out.append(make("OWS-MDL-040", f"{pickles} pickle(s) analysed; every import is on the allowlist"))
    return out


def _code_findings(make: Callable[..., ModelFinding], code: dict[str, bytes]) -> list[ModelFinding]:
    out: list[ModelFinding] = []
    for name, data in code.items():
        try:
            hits = torchscript_check.scan_code(data.decode("utf-8", "replace"))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            out.append(make("OWS-MDL-050", f"{name}: TorchScript code does not parse ({type(exc).__name__}: {exc})"))
            continue
        for hit in hits:
            message = f"{name}:{hit.line}: TorchScript code reaches {hit.op}: {hit.why}"
            out.append(make("OWS-MDL-027", message, executes=hit.op, severity=hit.severity))
    return out


def _report_findings(make: Callable[..., ModelFinding], where: str, report: PickleReport) -> list[ModelFinding]:
    out: list[ModelFinding] = []
    for hit in report.hits:
        detail = f" ({hit.detail})" if hit.detail else ""
        if hit.what in ("computed import",) or hit.what.startswith("extension code"):
            out.append(make("OWS-MDL-022", f"{where}{hit.what} at byte {hit.offset}{detail}", severity=hit.severity))
        elif hit.severity == "critical":
            message = f"{where}imports {hit.what} at byte {hit.offset}{detail}"
            out.append(make("OWS-MDL-021", message, executes=hit.what))
        else:
            out.append(
                make(
                    "OWS-MDL-020",
                    f"{where}imports {hit.what} at byte {hit.offset}{detail}",
                    executes=hit.what,
                    severity=hit.severity,
                )
            )
    out += [make("OWS-MDL-050", f"{where}{e}") for e in report.errors]
    return out
