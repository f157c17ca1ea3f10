"""Model-file checks: `scan_models(path) -> list[ModelFinding]` for a file or a folder.

- GGUF: metadata through the `gguf` library; chat templates checked for injection constructs and rendered
  only in the immutable sandbox;
- pickle-based files (.bin, .pt, .pth, .pkl, .ckpt, also inside PyTorch zip checkpoints): opcodes read,
  never unpickled; imports outside a small allowlist reported;
- safetensors: header length, JSON, dtypes, shapes and offsets checked.

Every model file gets an `OWS-MDL-000` info finding with its format and SHA-256 (and whether it matches a
digest pinned in the catalog). Unreadable or malformed files are reported (OWS-SCAN-001) and skipped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from owstack.security.findings import ModelFinding, model_finding, sort_key
from owstack.security.model_scan import gguf_check, pickles, safetensors_check

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
MODEL_SUFFIXES = PICKLE_SUFFIXES | {".gguf", ".safetensors"}
_SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv"})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def catalog_pins() -> dict[str, tuple[str, str]]:
    """GGUF file name -> (catalog model id, pinned sha256), from catalog/data/models.yaml."""
    from owstack.catalog import load_data

    out: dict[str, tuple[str, str]] = {}
    for model_id, spec in (load_data("models").get("models") or {}).items():
        gguf = spec.get("gguf") if isinstance(spec, dict) else None
        if isinstance(gguf, dict) and gguf.get("file") and gguf.get("sha256"):
            out[str(gguf["file"])] = (str(model_id), str(gguf["sha256"]).lower())
    return out


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if Path(name).suffix.lower() in MODEL_SUFFIXES:
                yield Path(dirpath) / name


def _sniff(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(b"GGUF"):
        return "gguf"
    if head.startswith(b"PK\x03\x04"):
        return "pytorch-zip"
    if head[:1] == b"\x80":
        return "pickle"
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    return "gguf" if suffix == ".gguf" else "unknown"


def scan_models(path: str | os.PathLike[str]) -> list[ModelFinding]:
    """Scan one model file or every model file under a folder; findings sorted by severity."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    base = root.parent if root.is_file() else root
    out: list[ModelFinding] = []
    for file in _files(root):
        out += scan_file(file, file.relative_to(base).as_posix())
    return sorted(out, key=sort_key)


def scan_file(path: Path, rel: str) -> list[ModelFinding]:
    """All findings for one model file; never raises for a bad file."""
    try:
        if path.is_symlink():
            raise OSError("symbolic link (not followed)")
        fmt = _sniff(path)
        digest = sha256_of(path)
    except OSError as exc:
        return [
            model_finding(
                "OWS-SCAN-001",
                rel,
                f"skipped: unreadable ({getattr(exc, 'strerror', None) or exc})",
                sha256="",
                fmt="unknown",
            )
        ]
    try:
        found = _CHECKS.get(fmt, _unknown)(path, rel, digest)
    except Exception as exc:
        found = [
            model_finding(
                "OWS-SCAN-001",
                rel,
                f"skipped: malformed {fmt} file ({type(exc).__name__}: {exc})"[:300],
                sha256=digest,
                fmt=fmt,
            )
        ]
    return [_digest(path, rel, digest, fmt, found), *found]


def _digest(path: Path, rel: str, digest: str, fmt: str, found: list[ModelFinding]) -> ModelFinding:
    pin = catalog_pins().get(path.name)
    note = ""
    if pin is not None:
        note = (
            f"; matches the catalog pin of {pin[0]}" if pin[1] == digest else f"; catalog pin of {pin[0]} is {pin[1]}"
        )
    return model_finding(
        "OWS-MDL-000",
        rel,
        f"{fmt} file, sha256 {digest}{note}",
        sha256=digest,
        fmt=fmt,
        pinned=pin[0] if pin and pin[1] == digest else None,
    )


def _pin_findings(path: Path, rel: str, digest: str, fmt: str) -> list[ModelFinding]:
    pin = catalog_pins().get(path.name)
    if pin is None or pin[1] == digest:
        return []
    return [
        model_finding(
            "OWS-MDL-001",
            rel,
            f"{path.name} is the catalog's {pin[0]} file, but its sha256 is {digest}, not {pin[1]}",
            sha256=digest,
            fmt=fmt,
        )
    ]


def _gguf(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    info = gguf_check.inspect(path)
    out = _pin_findings(path, rel, digest, "gguf")
    for t in info.templates:
        where = f"chat template {t.name!r}"
        if t.constructs or t.violation:
            what = ", ".join(t.constructs[:8]) or str(t.violation)
            detail = f"; the sandbox stopped it: {t.violation}" if t.violation else ""
            out.append(
                model_finding(
                    "OWS-MDL-010", rel, f"{where} uses {what}{detail}", sha256=digest, fmt="gguf", executes=what
                )
            )
        elif t.error:
            out.append(model_finding("OWS-MDL-011", rel, f"{where}: {t.error}"[:300], sha256=digest, fmt="gguf"))
    return out


def _pickle(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    fmt = "pytorch-zip" if _sniff(path) == "pytorch-zip" else "pickle"
    out: list[ModelFinding] = []
    with path.open("rb") as fh:
        reports = pickles.scan_file(fh, path.stat().st_size)
    for member, report in reports.items():
        where = f"{member}: " if member else ""
        for module, name, offset in report.imports:
            severity = pickles.verdict(module, name)
            if severity is not None:
                rule = "OWS-MDL-021" if severity == "critical" else "OWS-MDL-020"
                out.append(
                    model_finding(
                        rule,
                        rel,
                        f"{where}imports {module}.{name} (byte {offset})",
                        sha256=digest,
                        fmt=fmt,
                        executes=f"{module}.{name}",
                    )
                )
        for offset in report.unresolved:
            out.append(
                model_finding(
                    "OWS-MDL-022",
                    rel,
                    f"{where}STACK_GLOBAL at byte {offset} with computed arguments",
                    sha256=digest,
                    fmt=fmt,
                )
            )
        if report.error:
            out.append(model_finding("OWS-SCAN-001", rel, f"{where}{report.error}"[:300], sha256=digest, fmt=fmt))
    if not reports:
        out.append(
            model_finding(
                "OWS-SCAN-001", rel, "zip file without pickles: not a PyTorch checkpoint", sha256=digest, fmt=fmt
            )
        )
    elif not any(f.severity in ("high", "critical") for f in out):
        out.append(
            model_finding(
                "OWS-MDL-040", rel, "pickle-based weights; imports are all on the allowlist", sha256=digest, fmt=fmt
            )
        )
    return out


def _safetensors(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    with path.open("rb") as fh:
        problems, _ = safetensors_check.check(fh, path.stat().st_size)
    return [model_finding("OWS-MDL-030", rel, p, sha256=digest, fmt="safetensors") for p in problems]


def _unknown(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    return [
        model_finding(
            "OWS-SCAN-001",
            rel,
            "skipped: not a GGUF, pickle, PyTorch zip or safetensors file",
            sha256=digest,
            fmt="unknown",
        )
    ]


_CHECKS = {"gguf": _gguf, "pickle": _pickle, "pytorch-zip": _pickle, "safetensors": _safetensors}
