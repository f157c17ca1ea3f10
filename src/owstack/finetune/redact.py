"""PII redaction of training text with Microsoft Presidio, offline.

Presidio's analyzer normally loads a spaCy model (`en_core_web_lg`) and downloads it when it is missing.
owstack never downloads anything, so it gives Presidio a blank spaCy English pipeline (tokenizer only,
shipped inside the spaCy wheel): Presidio's pattern recognizers (e-mail, phone, credit card with Luhn
check, IBAN with checksum, IP, URL, US SSN, crypto wallet) then run unchanged. Names and places (PERSON,
LOCATION) need a statistical NER model: name an installed spaCy pipeline in `spacy_model` (installed as a
package from your own mirror); owstack refuses PERSON/LOCATION without one rather than pretend.

tldextract (used by Presidio's e-mail recognizer) would fetch the public suffix list over the network on
first use; `TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS` is set empty before import so it uses its bundled snapshot.

Every message of every example is redacted; detections are replaced by `<ENTITY_TYPE>`. The counts per
type (never the values) go into the lineage record.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from owstack.finetune.data import Example
from owstack.finetune.errors import FinetuneError
from owstack.finetune.recipe import Redaction


class Redactor:
    def __init__(self, settings: Redaction) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self._analyzer, self._anonymizer = _engines(settings.spacy_model)

    def text(self, text: str) -> str:
        if not text.strip():
            return text
        found = self._analyzer.analyze(
            text=text, language="en", entities=list(self.settings.entities), score_threshold=self.settings.min_score
        )
        if not found:
            return text
        self.counts.update(r.entity_type for r in found)
        return str(self._anonymizer.anonymize(text=text, analyzer_results=found).text)

    def example(self, example: Example) -> Example:
        data: dict[str, Any] = {}
        for key, value in example.data.items():
            if isinstance(value, list):
                data[key] = [{**m, "content": self.text(m["content"])} for m in value]
            else:
                data[key] = value
        return Example(data, example.ref)


def _engines(spacy_model: str | None) -> tuple[Any, Any]:
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_anonymizer import AnonymizerEngine
    except ImportError:
        raise FinetuneError(
            "data.redact_pii needs Presidio: pip install 'owstack[pii]' (presidio-analyzer, presidio-anonymizer)"
        ) from None

    class _LocalSpacy(SpacyNlpEngine):
        """Presidio's spaCy engine, loading only what is installed (never spacy.cli.download)."""

        def load(self) -> None:
            if spacy_model is None:
                self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]
                return
            try:
                self.nlp = {"en": spacy.load(spacy_model)}  # type: ignore[assignment]
            except OSError:
                raise FinetuneError(
                    f"data.redact_pii.spacy_model: the spaCy pipeline {spacy_model!r} is not installed "
                    "(owstack does not download it; install its wheel from your mirror)"
                ) from None

    engine = _LocalSpacy(models=[{"lang_code": "en", "model_name": spacy_model or "blank"}])
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=engine)
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"]), AnonymizerEngine()
