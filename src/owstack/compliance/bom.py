"""`owstack bom`: a CycloneDX 1.6 ML-BOM of the deployed system.

Components: the owstack application; its installed Python dependencies (walked from owstack's own
requirements with `importlib.metadata`, with versions, package URLs and declared licenses); and one
`machine-learning-model` component per distinct model the config serves, with its license, catalog
facts as properties, its Hugging Face repository as an external reference and, where the weights are
pinned (the embedded GGUF's digest from the catalog, or a backend's `sha256`), a SHA-256 hash.

cyclonedx-python-lib 11 has no model-card API, so the `modelCard` object (model parameters: task,
architecture, inputs and outputs) is added to the serialised JSON; the result is then checked with the
library's own strict JSON validator for CycloneDX 1.6, and an invalid document is never written.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from typing import Any

from owstack import __version__
from owstack.compliance.facts import ModelFacts, model_facts
from owstack.config.load import Config
from owstack.finetune.facts import bom_properties, finetuned

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class BomError(Exception):
    """The BOM could not be built or did not validate."""


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def python_dependencies(root: str = "owstack") -> list[metadata.Distribution]:
    """Installed distributions owstack requires, transitively (extras' requirements when installed)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = _canon(dist.metadata["Name"] or name)
        if key in seen:
            continue
        seen[key] = dist
        for req in dist.requires or []:
            m = _REQ_NAME.match(req)
            if m and _canon(m.group(1)) not in seen:
                todo.append(m.group(1))
    seen.pop(_canon(root), None)
    return sorted(seen.values(), key=lambda d: _canon(d.metadata["Name"] or ""))


def _license_of(dist: metadata.Distribution) -> str | None:
    meta = dist.metadata
    expr = meta["License-Expression"]
    if expr:
        return str(expr)
    text = meta["License"]
    if text and len(text) < 64 and "\n" not in text:
        return str(text)
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License :: OSI Approved :: "):
            return str(classifier.rsplit(" :: ", 1)[-1])
    return None


def _license_factory() -> Any:
    try:  # cyclonedx-python-lib >= 11.x
        from cyclonedx.contrib.license.factories import LicenseFactory
    except ImportError:
        from cyclonedx.factory.license import LicenseFactory
    return LicenseFactory()


def _build(config: Config) -> tuple[Any, dict[str, ModelFacts]]:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense
    from packageurl import PackageURL

    factory = _license_factory()

    def licenses(text: str | None) -> list[Any]:
        # an SPDX id when it is one, else an SPDX expression when it parses, else a named license
        return [factory.make_from_string(text)] if text else []

    app = Component(
        name="owstack",
        version=__version__,
        type=ComponentType.APPLICATION,
        bom_ref="owstack",
        purl=PackageURL("pypi", name="owstack", version=__version__),
        licenses=[DisjunctiveLicense(id="Apache-2.0")],
        description="Gateway and toolset for an AI-agent stack on self-hosted open-weight models",
    )
    bom = Bom()
    bom.metadata.component = app
    deps = []
    for dist in python_dependencies():
        name, version = dist.metadata["Name"], dist.version
        try:
            lic = licenses(_license_of(dist))
        except ValueError:
            lic = []
        comp = Component(
            name=name,
            version=version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{_canon(name)}@{version}",
            purl=PackageURL("pypi", name=_canon(name), version=version),
            licenses=lic,
        )
        bom.components.add(comp)
        deps.append(comp)
    models: dict[str, ModelFacts] = {}
    for f in model_facts(config).values():
        key = f.catalog_id or f.model
        models.setdefault(key, f)
    for key, f in models.items():
        props = [Property(name=f"owstack:{k}", value=str(v)) for k, v in _model_props(f).items() if v not in (None, "")]
        comp = Component(
            name=f.name or f.model,
            version=f.version or (f.card_date or "unversioned"),
            type=ComponentType.MACHINE_LEARNING_MODEL,
            bom_ref=f"model:{key}",
            licenses=licenses(f.license),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=f.weights_digest.removeprefix("sha256:"))]
            if f.weights_digest
            else [],
            external_references=[
                ExternalReference(
                    type=ExternalReferenceType.DISTRIBUTION, url=XsUri(f"https://huggingface.co/{f.hf_repo}")
                )
            ]
            if f.hf_repo
            else [],
            properties=props,
            description=f"served by backend {f.backend} ({f.engine}, jurisdiction {f.jurisdiction})",
        )
        bom.components.add(comp)
        deps.append(comp)
    for entry in finetuned(config):  # fine-tuned adapters, with their lineage (owstack.finetune.facts)
        comp = Component(
            name=entry["name"],
            version=entry["sha256"][:12],
            type=ComponentType.MACHINE_LEARNING_MODEL,
            bom_ref=f"adapter:{entry['name']}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=entry["sha256"])],
            properties=[Property(name=f"owstack:{k}", value=v) for k, v in bom_properties(entry).items()],
            description=f"LoRA adapter on {entry['base']}, served by {', '.join(entry['backends']) or 'no backend'}",
        )
        bom.components.add(comp)
        deps.append(comp)
    bom.register_dependency(app, deps)
    return bom, models


def _model_props(f: ModelFacts) -> dict[str, Any]:
    return {
        "catalog_id": f.catalog_id,
        "served_model": f.model,
        "backend": f.backend,
        "engine": f.engine,
        "jurisdiction": f.jurisdiction,
        "proprietary": str(f.proprietary).lower(),
        "params_total": f"{f.params_total:.4g}" if f.params_total else None,
        "context_tokens": f.context,
        "gguf_file": f.gguf_file,
        "gguf_bytes": f.gguf_bytes,
        "catalog_source": f.card_source,
        "catalog_date": f.card_date,
        "weights_pinned": str(f.weights_digest is not None).lower(),
    }


def bom_json(config: Config) -> str:
    """The ML-BOM as CycloneDX 1.6 JSON; raises `BomError` if the library's validator rejects it."""
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    bom, models = _build(config)
    data = json.loads(JsonV1Dot6(bom).output_as_string())
    for comp in data.get("components", []):
        ref = comp.get("bom-ref", "")
        if comp.get("type") == "machine-learning-model" and ref.startswith("model:"):
            f = models[ref.removeprefix("model:")]
            io = [{"format": m} for m in f.modalities] or [{"format": "text"}]
            comp["modelCard"] = {
                "modelParameters": {
                    "task": "text-generation",
                    "architectureFamily": "transformer",
                    "inputs": io,
                    "outputs": [{"format": "text"}],
                }
            }
    text = json.dumps(data, indent=2, sort_keys=False)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        first = str(error).strip().splitlines()[0]
        raise BomError(f"the generated ML-BOM does not validate against CycloneDX 1.6: {first}")
    return text
