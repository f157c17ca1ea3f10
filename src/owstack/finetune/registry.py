"""The adapter registry: trained adapters registered for backends, as files the gateway reads at start.

    <adapters.registry>/<name>/
      adapter.json      the entry: backends, base digest, jurisdictions, digests, who added it and when
      adapter.gguf      the GGUF LoRA adapter (the embedded llama.cpp engine loads it)
      peft/             the PEFT adapter (what vLLM and SGLang load)
      lineage.json      the run's lineage record (read by `owstack bom` and `owstack docs annex-iv`)

An entry is written to a temporary folder and renamed into place; the files are copies, so deleting the
run folder does not break serving. `check_backend` is the gate for `owstack adapters add`: the backend's
engine must load adapters, its jurisdiction must be one the adapter's training data allows, and for the
embedded engine its weights must be the adapter's base (same SHA-256).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owstack.finetune import lineage
from owstack.finetune.data import sha256_file
from owstack.finetune.errors import FinetuneError
from owstack.finetune.sovereignty import may_serve

ENTRY = "adapter.json"
#: engines owstack can serve an adapter on
ENGINES = ("llamacpp", "vllm", "sglang")


class RegistryError(FinetuneError):
    pass


@dataclass(slots=True)
class Adapter:
    name: str
    folder: Path
    backends: list[str]
    base_sha256: str
    base: str
    jurisdictions: list[str]
    sha256: str  # of adapter.gguf
    added: str
    added_by: str
    remote: dict[str, Any] = field(default_factory=dict)

    @property
    def gguf(self) -> Path:
        return self.folder / "adapter.gguf"

    @property
    def peft(self) -> Path:
        return self.folder / "peft"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backends": self.backends,
            "base_sha256": self.base_sha256,
            "base": self.base,
            "jurisdictions": self.jurisdictions,
            "sha256": self.sha256,
            "added": self.added,
            "added_by": self.added_by,
            "remote": self.remote,
        }

    @classmethod
    def read(cls, folder: Path) -> Adapter:
        data = json.loads((folder / ENTRY).read_text("utf-8"))
        data.pop("name", None)
        return cls(name=folder.name, folder=folder, **data)


class Registry:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def adapters(self) -> dict[str, Adapter]:
        if not self.directory.is_dir():
            return {}
        out = {}
        for folder in sorted(self.directory.iterdir()):
            if folder.is_dir() and (folder / ENTRY).is_file():
                try:
                    out[folder.name] = Adapter.read(folder)
                except (ValueError, TypeError, OSError):
                    continue  # a damaged entry serves nothing; `adapters list` shows the rest
        return out

    def get(self, name: str) -> Adapter:
        adapter = self.adapters().get(name)
        if adapter is None:
            known = ", ".join(self.adapters()) or "none registered"
            raise RegistryError(f"no adapter {name!r} in {self.directory} (adapters: {known})")
        return adapter

    def save(self, adapter: Adapter) -> None:
        _write_json(adapter.folder / ENTRY, adapter.to_dict())

    def add_run(self, run: Path, name: str, by: str) -> Adapter:
        """Copy a run's adapter into the registry (no backend yet); the same digest again is a no-op."""
        record = _lineage(run)
        gguf, peft = run / "adapter.gguf", run / "adapter"
        if not gguf.is_file() or not (peft / "adapter_config.json").is_file():
            raise RegistryError(f"{run} has no adapter.gguf and adapter/ (was export.gguf_adapter off?)")
        digest = sha256_file(gguf)
        existing = self.adapters().get(name)
        if existing is not None:
            if existing.sha256 != digest:
                raise RegistryError(f"an adapter named {name!r} with other weights is registered; remove it first")
            return existing
        folder = self.directory / name
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(gguf, tmp / "adapter.gguf")
        shutil.copytree(peft, tmp / "peft")
        shutil.copy2(run / lineage.FILE, tmp / lineage.FILE)
        adapter = Adapter(
            name=name,
            folder=folder,
            backends=[],
            base_sha256=str(record["base"]["sha256"]),
            base=str(record["base"].get("catalog_id") or record["base"]["spec"]),
            jurisdictions=list(record["jurisdiction"]["serving"]),
            sha256=digest,
            added=lineage.now(),
            added_by=by,
        )
        _write_json(tmp / ENTRY, adapter.to_dict())
        tmp.rename(folder)
        return adapter

    def remove(self, name: str) -> None:
        shutil.rmtree(self.get(name).folder)


def _lineage(run: Path) -> dict[str, Any]:
    try:
        record = lineage.read(run)
    except ValueError as exc:
        raise RegistryError(str(exc)) from None
    if record.get("kind") != "lora-adapter":
        raise RegistryError(f"{run} holds a {record.get('kind')}, not a LoRA adapter; serve its merged GGUF instead")
    return record


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", "utf-8")
    tmp.replace(path)


def backend_weights_sha256(section: Any) -> str | None:
    """The SHA-256 of an embedded backend's GGUF: its pin, the catalog's, or the file's own."""
    if section.sha256:
        return str(section.sha256).lower()
    if section.model_path:
        path = Path(section.model_path).expanduser()
        return sha256_file(path) if path.is_file() else None
    from owstack.catalog.models import find_card

    card = find_card(section.catalog or section.model)
    return card.gguf.sha256 if card is not None and card.gguf is not None else None


def check_backend(adapter: Adapter, name: str, section: Any) -> None:
    """Refuse a backend the adapter may not be served on (engine, jurisdiction, base weights)."""
    if section.engine not in ENGINES:
        raise RegistryError(f"--backend {name}: engine {section.engine} does not load adapters ({', '.join(ENGINES)})")
    if not may_serve(section.jurisdiction, adapter.jurisdictions):
        raise RegistryError(
            f"--backend {name}: it runs in {section.jurisdiction!r}, but adapter {adapter.name!r} was trained on data "
            f"that may only be served in {', '.join(adapter.jurisdictions)}"
        )
    if section.engine == "llamacpp":
        weights = backend_weights_sha256(section)
        if weights != adapter.base_sha256:
            raise RegistryError(
                f"--backend {name}: its weights (sha256 {weights}) are not the adapter's base "
                f"({adapter.base}, sha256 {adapter.base_sha256})"
            )


def for_backend(directory: Path, backend: str) -> dict[str, Path]:
    """Adapter name -> GGUF file, for the adapters registered on `backend` (what the embedded engine loads)."""
    return {a.name: a.gguf for a in Registry(directory).adapters().values() if backend in a.backends}
