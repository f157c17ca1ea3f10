"""File builders shared by the red-team passes on `scan --models` (`test_model_redteam.py`, `..._redteam2.py`,
`..._redteam3.py`): the scanner's verdict per file, pickle opcodes, protobuf fields, tar and Keras archives."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

from owstack.security.model_scan import scan_models

#: protocol 0: import os.getcwd and call it (harmless, yet critical to the allowlist); GETCWD also stops
GETCWD_CALL = b"cos\ngetcwd\n)R"
GETCWD = GETCWD_CALL + b"."
ORDER = ["info", "low", "medium", "high", "critical"]


def verdicts(path: Path) -> dict[str, str]:
    """File -> the worst severity of its findings (the OWS-MDL-000 info digests left out); absent if none."""
    out: dict[str, str] = {}
    for f in scan_models(path):
        if f.rule == "OWS-MDL-000":
            continue
        if ORDER.index(f.severity) >= ORDER.index(out.get(f.file, "info")):
            out[f.file] = f.severity
    return out


def below_high(path: Path) -> bool:
    return all(ORDER.index(s) < ORDER.index("high") for s in verdicts(path).values())


def su(text: str) -> bytes:
    """Pickle SHORT_BINUNICODE."""
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def sg(module: str, name: str) -> bytes:
    """Pickle STACK_GLOBAL of `module.name`."""
    return su(module) + su(name) + b"\x93"


def pb(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: a varint or a length-delimited payload."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tar_of(members: dict[str, bytes], format: int = tarfile.DEFAULT_FORMAT) -> bytes:
    """A tar archive of `members` (name -> bytes), in that order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def keras_archive(
    path: Path, layers: list[dict[str, object]], version: str = "3.11.0", registered_name: str | None = None
) -> None:
    """A Keras 3 `.keras` zip: a Functional model of `layers`, its metadata and an empty weights file."""
    config: dict[str, object] = {
        "module": "keras",
        "class_name": "Functional",
        "config": {"name": "m", "layers": layers},
    }
    if registered_name is not None:
        config["registered_name"] = registered_name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": version}))
        archive.writestr("model.weights.h5", b"")
