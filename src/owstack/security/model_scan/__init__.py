"""Model-file checks: `scan_models(path) -> list[ModelFinding]` for a file or a folder.

- GGUF: the header read with every count, length and tensor offset bounds-checked (`gguf_header`);
  chat templates (every key and value type a loader renders) analysed on their AST for literal and
  computed dunder access and rendered only in the immutable sandbox; the same for the templates of
  `tokenizer_config.json`, `chat_template.json` and `chat_template.jinja`;
- pickle-bearing files (`pickle_files`): plain pickles of every protocol, legacy and zip PyTorch
  checkpoints (tensors checked against their storages: `tensor_bounds`; TorchScript code and mobile
  bytecode: `torchscript_check`), numpy `.npy`/`.npz`, joblib (plain or compressed), run on a symbolic
  pickle machine and by fickling, never unpickled, with size and ratio limits on every container; a
  `.bin` that is no pickle at all (OpenVINO weights) is "not a pickle" (low);
- safetensors: header length, JSON, dtypes, shapes and offsets checked;
- TensorFlow graphs: ops that reach the host (`protobuf_check.tf_host_ops`); skops files: types outside
  skops' trusted set (`skops_check`); Hugging Face configs: `auto_map` into another repository and sizes
  that allocate terabytes (`hf_config`, reported only when they have a finding).

Every model file gets an `OWS-MDL-000` info finding with its format and SHA-256 (and whether it matches a
digest pinned in the catalog). A file that cannot be fully analysed gets `OWS-MDL-050` (high): an
unknown file is never reported as clean.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from owstack.security.findings import ModelFinding, model_finding, sort_key
from owstack.security.model_scan import (
    containers,
    discover,
    gguf_check,
    hf_config,
    keras_check,
    pickle_files,
    protobuf_check,
    safetensors_check,
    skops_check,
    template_files,
)

MODEL_SUFFIXES = discover.MODEL_SUFFIXES
MAX_PROTOBUF_BYTES = containers.MAX_MEMBER_BYTES


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


def _sniff(path: Path) -> str:
    """The format by content (magic bytes), the name only where the content cannot tell."""
    if template_files.is_template(path.name):
        return "template"
    if hf_config.is_config(path.name):
        return "hf-config"
    with path.open("rb") as fh:
        head = fh.read(512)
    suffix = path.suffix.lower()
    if suffix == ".keras" and keras_check.is_keras_zip(path):
        return "keras"  # Keras opens a .keras file with zipfile, which finds an archive appended to anything
    fmt = discover.content_format(head)
    if fmt == "zip":
        if suffix == ".npz":
            return "npz"
        if suffix == ".skops" or skops_check.is_skops(path):
            return "skops"
        return "keras" if suffix == ".keras" or keras_check.is_keras_zip(path) else "pytorch-zip"
    if fmt == "pickle" and suffix == ".safetensors" and discover.safetensors_like(head):
        return "safetensors"  # a header length of 0x0?80 looks like a pickle's first bytes
    if fmt is not None:
        return fmt
    if suffix == ".safetensors" or discover.safetensors_like(head):
        return "safetensors"
    by_name = {".gguf": "gguf", ".onnx": "onnx", ".pb": "tensorflow"}
    if suffix in by_name:
        return by_name[suffix]
    if suffix == ".model" and head[:1] == b"\x0a" and protobuf_check.wire_problem(path.read_bytes()) is None:
        return "sentencepiece"
    return "pickle"


def scan_models(path: str | os.PathLike[str]) -> list[ModelFinding]:
    """Scan one model file or every model file under a folder; findings sorted by severity."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    base = root.parent if root.is_file() else root
    out: list[ModelFinding] = []
    for found in discover.walk(root):
        rel = found.path.relative_to(base).as_posix()
        if found.outside is not None:
            message = f"symbolic link to {found.outside}, outside the scanned folder: not followed"
            out.append(model_finding("OWS-SCAN-002", rel, message, sha256="", fmt="link", severity="high"))
        else:
            out += scan_file(found.path, rel)
    return sorted(out, key=sort_key)


def scan_file(path: Path, rel: str) -> list[ModelFinding]:
    """All findings for one model file; never raises for a bad file."""
    try:
        if not path.is_file():
            raise OSError("not a regular file")
        fmt = _sniff(path)
        digest = sha256_of(path)
    except OSError as exc:
        return [
            model_finding(
                "OWS-MDL-050",
                rel,
                f"not analysed: unreadable ({getattr(exc, 'strerror', None) or exc})",
                sha256="",
                fmt="unknown",
            )
        ]
    try:
        found = _check(fmt)(path, rel, digest)
    except Exception as exc:
        found = [
            model_finding(
                "OWS-MDL-050",
                rel,
                f"not analysed: malformed {fmt} file ({type(exc).__name__}: {exc})"[:300],
                sha256=digest,
                fmt=fmt,
            )
        ]
    if fmt == "hf-config" and not found:
        return []  # a configuration beside the weights, not a model file: reported only for what it makes a loader do
    if fmt in _OTHER_FORMATS and Path(path.name.lower()).suffix in discover.PICKLE_SUFFIXES:
        found += pickle_files.findings(rel, digest, pickle_files.as_pickle(path))
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
    out += [model_finding("OWS-MDL-031", rel, p, sha256=digest, fmt="gguf") for p in info.tensor_problems]
    return out + template_files.findings(rel, digest, "gguf", info.templates)


def _templates(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    out = template_files.findings(rel, digest, "template", template_files.check_file(path))
    return out + (_hf_config(path, rel, digest, "template") if hf_config.is_config(path.name) else [])


def _hf_config(path: Path, rel: str, digest: str, fmt: str = "hf-config") -> list[ModelFinding]:
    config = hf_config.load(path)
    out = []
    for ref in hf_config.remote_code(config):
        message = f"auto_map {ref}: trust_remote_code=True downloads and runs code from another repository"
        out.append(model_finding("OWS-MDL-033", rel, message, sha256=digest, fmt=fmt, executes=ref))
    for severity, kind in hf_config.module_types(config) if path.name.lower() == "modules.json" else []:
        message = f"module type {kind!r}: sentence-transformers imports it by this path and calls its load()"
        out.append(model_finding("OWS-MDL-033", rel, message, sha256=digest, fmt=fmt, severity=severity, executes=kind))  # type: ignore[arg-type]
    peft = hf_config.peft_base_class(config) if path.name.lower() == "adapter_config.json" else None
    if peft is not None:
        message = f"auto_mapping {peft[1]}: AutoPeftModel imports this module and calls the class's from_pretrained"
        out.append(
            model_finding("OWS-MDL-033", rel, message, sha256=digest, fmt=fmt, severity=peft[0], executes=peft[1])
        )
    for component in hf_config.diffusers_components(config) if path.name.lower() == "model_index.json" else []:
        message = f"component {component}: DiffusionPipeline imports this library and looks the class up in it"
        out.append(model_finding("OWS-MDL-033", rel, message, sha256=digest, fmt=fmt, severity="critical"))
    for severity, count in sorted(hf_config.absurd_sizes(config), key=lambda x: -x[1])[:1]:
        message = f"the config describes a model of about {count:.2e} parameters: loading it allocates that much memory"
        out.append(model_finding("OWS-MDL-034", rel, message, sha256=digest, fmt=fmt, severity=severity))  # type: ignore[arg-type]
    return out


def _pickle(fmt: str) -> Callable[[Path, str, str], list[ModelFinding]]:
    def check(path: Path, rel: str, digest: str) -> list[ModelFinding]:
        return pickle_files.findings(rel, digest, pickle_files.analyse(path, fmt))

    return check


def _ggml(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    return []  # legacy llama.cpp weights: tensors and a vocabulary, no code and no template


def _safetensors(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    with path.open("rb") as fh:
        problems, _ = safetensors_check.check(fh, path.stat().st_size)
    return [
        model_finding("OWS-MDL-032", rel, p, sha256=digest, fmt="safetensors")
        if "Hydra _target_" in p
        else model_finding("OWS-MDL-030", rel, p, sha256=digest, fmt="safetensors")
        for p in problems
    ]


def _keras(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    try:
        configs = keras_check.zip_configs(path)
    except containers.ContainerError as exc:
        return [model_finding("OWS-MDL-050", rel, f"not analysed: {exc}", sha256=digest, fmt="keras")]
    return _keras_findings(rel, digest, "keras", configs)


def _keras_findings(rel: str, digest: str, fmt: str, configs: list[object]) -> list[ModelFinding]:
    return [
        model_finding("OWS-MDL-024", rel, message, sha256=digest, fmt=fmt, severity=severity)  # type: ignore[arg-type]
        for config in configs
        for severity, message in keras_check.code_in(config)
    ]


def _skops(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    try:
        tree = skops_check.schema(path)
    except containers.ContainerError as exc:
        return [model_finding("OWS-MDL-050", rel, f"not analysed: {exc}", sha256=digest, fmt="skops")]
    return [
        model_finding("OWS-MDL-035", rel, message, sha256=digest, fmt="skops", severity=severity)  # type: ignore[arg-type]
        for severity, message in skops_check.untrusted(tree)
    ]


def _hdf5(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    return _keras_findings(rel, digest, "hdf5", keras_check.embedded_configs(path))


def _protobuf(fmt: str) -> Callable[[Path, str, str], list[ModelFinding]]:
    def check(path: Path, rel: str, digest: str) -> list[ModelFinding]:
        if path.stat().st_size > MAX_PROTOBUF_BYTES:
            message = f"not analysed: file larger than {MAX_PROTOBUF_BYTES} bytes"
            return [model_finding("OWS-MDL-050", rel, message, sha256=digest, fmt=fmt)]
        data = path.read_bytes()
        problem = protobuf_check.wire_problem(data)
        if problem is not None:
            message = f"not analysed: not a well-formed protobuf ({problem})"
            return [model_finding("OWS-MDL-050", rel, message, sha256=digest, fmt=fmt)]
        out: list[ModelFinding] = []
        walk = protobuf_check.onnx_walk(data) if fmt == "onnx" else None
        for location in protobuf_check.onnx_locations(data, walk) if walk is not None else []:
            if protobuf_check.escapes(location):
                message = f"external data location {location!r} leaves the model's folder"
                out.append(model_finding("OWS-MDL-025", rel, message, sha256=digest, fmt=fmt))
        if walk is not None and walk.truncated:
            message = "not analysed: more ONNX messages than the scanner walks (external data and operators unchecked)"
            out.append(model_finding("OWS-MDL-050", rel, message, sha256=digest, fmt=fmt))
        custom = protobuf_check.onnx_custom_ops(data, walk) if walk is not None else []
        if custom:
            message = f"nodes use operators from custom domains ({', '.join(custom[:6])}): a native library runs them"
            out.append(model_finding("OWS-MDL-028", rel, message, sha256=digest, fmt=fmt))
        if fmt == "tensorflow":
            for severity, message in protobuf_check.tf_host_ops(data):
                out.append(model_finding("OWS-MDL-026", rel, message, sha256=digest, fmt=fmt, severity=severity))  # type: ignore[arg-type]
            out += _keras_findings(rel, digest, fmt, keras_check.embedded_configs(path))
        return out

    return check


def _unknown(path: Path, rel: str, digest: str) -> list[ModelFinding]:
    return [model_finding("OWS-MDL-050", rel, "not analysed: format not recognised", sha256=digest, fmt="unknown")]


_CHECKS: dict[str, Callable[[Path, str, str], list[ModelFinding]]] = {
    "gguf": _gguf,
    "template": _templates,
    "hf-config": _hf_config,
    "ggml": _ggml,
    "safetensors": _safetensors,
    "keras": _keras,
    "skops": _skops,
    "hdf5": _hdf5,
    **{fmt: _protobuf(fmt) for fmt in ("onnx", "tensorflow", "sentencepiece")},
    **{fmt: _pickle(fmt) for fmt in ("pickle", "pytorch-zip", "npz", "npy", "tar")},
}


#: formats that are no pickle container: under a pickle name they are also read as the pickle a loader sees
_OTHER_FORMATS = frozenset({"gguf", "ggml", "safetensors", "hdf5", "onnx", "tensorflow", "sentencepiece", "unknown"})


def _check(fmt: str) -> Callable[[Path, str, str], list[ModelFinding]]:
    if fmt.startswith("joblib-"):
        return _pickle(fmt)
    return _CHECKS.get(fmt, _unknown)
