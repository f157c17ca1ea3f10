"""Facts about the running system taken from the config and the model catalog: what the audit records,
the Annex IV skeleton and the ML-BOM say about each backend's model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from owstack.compliance.chain import canonical
from owstack.config.load import Config


@dataclass(frozen=True, slots=True)
class ModelFacts:
    backend: str
    engine: str
    model: str
    jurisdiction: str
    proprietary: bool
    catalog_id: str | None = None
    name: str | None = None
    hf_repo: str | None = None
    license: str | None = None
    #: the variant (precision/quantization) or file the backend serves, when known
    version: str | None = None
    #: "sha256:<hex>" of the weights, when pinned (config `sha256`, or the catalog's embedded GGUF)
    weights_digest: str | None = None
    card_source: str | None = None
    card_date: str | None = None
    params_total: float | None = None
    context: int | None = None
    modalities: tuple[str, ...] = ()
    gguf_file: str | None = None
    gguf_bytes: int | None = None


def _find_card(name: str) -> Any:
    try:
        from owstack.catalog.models import find_card
    except ImportError:  # the catalog package is optional for the audit trail
        return None
    try:
        return find_card(name)
    except Exception:  # a broken user catalog file must not stop the audit record
        return None


def model_facts(config: Config) -> dict[str, ModelFacts]:
    """One entry per configured backend."""
    out: dict[str, ModelFacts] = {}
    for name, b in config.file.backends.items():
        card = _find_card(b.catalog or b.model)
        base: dict[str, Any] = {
            "backend": name,
            "engine": b.engine,
            "model": b.model,
            "jurisdiction": b.jurisdiction,
            "proprietary": b.proprietary,
        }
        digest = f"sha256:{b.sha256.lower()}" if b.sha256 else None
        if card is None:
            out[name] = ModelFacts(**base, weights_digest=digest)
            continue
        version = next((v.name for v in getattr(card, "variants", ()) if v.hf_repo == b.model), None)
        gguf = getattr(card, "gguf", None)
        if b.engine == "llamacpp" and gguf is not None and not b.model_path:
            version = version or gguf.file
            digest = digest or f"sha256:{gguf.sha256}"
        out[name] = ModelFacts(
            **base,
            catalog_id=card.id,
            name=card.name,
            hf_repo=card.hf_repo,
            license=card.license,
            version=version,
            weights_digest=digest,
            card_source=card.source,
            card_date=str(card.date),
            params_total=card.params_total,
            context=card.context,
            modalities=tuple(card.input_modalities),
            gguf_file=gguf.file if gguf is not None else None,
            gguf_bytes=gguf.bytes if gguf is not None else None,
        )
    return out


def config_hash(config: Config) -> str:
    """SHA-256 of the redacted config: the `policy_config` hash each record carries."""
    return "sha256:" + hashlib.sha256(canonical(config.redacted())).hexdigest()


def sha256_of(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value)).hexdigest()
