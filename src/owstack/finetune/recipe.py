"""The fine-tuning recipe: a small strict YAML file, with command-line overrides.

    name: ticket-router                  # the run's and the adapter's name
    base: embedded                       # a catalog id with a bundled GGUF, a .gguf file or a HF folder
    method: sft                          # sft, or dpo (preference rows: prompt, chosen, rejected)
    tuning: lora                         # lora, or full (every weight)
    jurisdiction: local                  # where this job's compute runs (checked against the data's)
    data:
      train: data/train.jsonl            # JSONL or Parquet; chat `messages`, prompt/completion, or preference
      eval: null                         # a held-out file; else `eval_split` of train is held out
      eval_split: 0.1
      jurisdictions: [local]             # where the local files' data may be processed
      audit: {tenant: acme-eu, config: owstack.yaml}   # rows from a consenting tenant's captured traffic
      redact_pii: false                  # or {entities: [EMAIL_ADDRESS, ...], spacy_model: null}
    lora: {r: 8, alpha: 16, dropout: 0.05, targets: [q_proj, k_proj, v_proj, o_proj]}
    training: {epochs: 3, lr: 2.0e-4, batch_size: 8, max_length: 512, seed: 0}
    export: {gguf_adapter: true, merged_gguf: none}
    evaluation: {scorer: exact, max_tokens: 32}

Every section and field is checked (`extra="forbid"`): an unknown field is an error naming its path.
Overrides are `dotted.path=value` pairs (`training.lr=1e-4`, `lora.targets=[q_proj,v_proj]`), the value
read as YAML, applied before validation, so an override is checked exactly like the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from owstack.config.yamlfile import read_mapping
from owstack.finetune.errors import RecipeError
from owstack.tenancy.config import JURISDICTION

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: PII entity types the redactor knows (Presidio's pattern recognizers; see redact.py)
PII_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "US_SSN",
    "CRYPTO",
    "PERSON",
    "LOCATION",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_jurisdictions(v: tuple[str, ...]) -> tuple[str, ...]:
    if not v:
        raise ValueError("needs at least one jurisdiction label (e.g. [local] or [eu])")
    for label in v:
        if not JURISDICTION.match(label):
            raise ValueError(f"{label!r} is not a jurisdiction label: lowercase, such as eu, us, local or eu-fr")
    return tuple(dict.fromkeys(v))


class AuditSource(_Strict):
    #: the tenant whose captured traffic becomes training data (its `finetune_consent` must be true)
    tenant: str
    #: the gateway config naming the tenant and the audit log (default: the embedded default config)
    config: str | None = None
    #: ISO 8601 UTC bounds on the records' time (since inclusive, until exclusive)
    since: str | None = None
    until: str | None = None
    #: keep only requests whose response finished normally (status 200, finish_reason stop)
    successful_only: bool = True


class Redaction(_Strict):
    #: entity types to replace with `<TYPE>`
    entities: tuple[str, ...] = PII_ENTITIES[:8]
    #: an installed spaCy pipeline for names and places (PERSON, LOCATION); None: patterns only
    spacy_model: str | None = None
    #: detections below this score are kept as they are
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.4

    @field_validator("entities")
    @classmethod
    def _entities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if name not in PII_ENTITIES:
                raise ValueError(f"unknown entity {name!r}; known: {', '.join(PII_ENTITIES)}")
        return v

    @model_validator(mode="after")
    def _needs_ner(self) -> Redaction:
        ner = [e for e in self.entities if e in ("PERSON", "LOCATION")]
        if ner and self.spacy_model is None:
            raise ValueError(f"{', '.join(ner)} need a named-entity model: set spacy_model to an installed one")
        return self


class DataSection(_Strict):
    train: tuple[str, ...] = ()
    eval: tuple[str, ...] = ()
    #: share of the training rows held out for evaluation when no `eval` file is given
    eval_split: Annotated[float, Field(ge=0, lt=1)] = 0.1
    #: where the local files' data may be processed (a label covers its finer ones: `eu` covers `eu-fr`)
    jurisdictions: tuple[str, ...] = ("local",)
    audit: AuditSource | None = None
    redact_pii: bool | Redaction = False
    #: chat rows: train on the last assistant turn, or on every assistant turn (one example each)
    train_on: Literal["last_turn", "all_turns"] = "last_turn"

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("jurisdictions")
    @classmethod
    def _jurisdictions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return _check_jurisdictions(v)

    @model_validator(mode="after")
    def _some_data(self) -> DataSection:
        if not self.train and self.audit is None:
            raise ValueError("train: give at least one file, or an `audit` source")
        return self

    @property
    def redaction(self) -> Redaction | None:
        if self.redact_pii is True:
            return Redaction()
        return self.redact_pii or None


class LoraSection(_Strict):
    r: Annotated[int, Field(ge=1, le=1024)] = 8
    alpha: Annotated[float, Field(gt=0)] = 16.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    #: module names (the last part, e.g. q_proj) or `all-linear`
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    rslora: bool = False

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v


class TrainingSection(_Strict):
    epochs: Annotated[float, Field(gt=0)] = 3.0
    #: stop after this many optimizer steps (overrides epochs when > 0)
    max_steps: Annotated[int, Field(ge=-1)] = -1
    lr: Annotated[float, Field(gt=0)] = 2e-4
    batch_size: Annotated[int, Field(ge=1)] = 8
    grad_accum: Annotated[int, Field(ge=1)] = 1
    max_length: Annotated[int, Field(ge=16)] = 512
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    seed: int = 0
    #: a resumable checkpoint every N optimizer steps (and at the end)
    checkpoint_every: Annotated[int, Field(ge=1)] = 50
    #: DPO's KL weight (beta)
    beta: Annotated[float, Field(gt=0)] = 0.1
    #: torch intra-op threads per process (0: torch's default)
    threads: Annotated[int, Field(ge=0)] = 0
    tensorboard: bool = False


class ExportSection(_Strict):
    #: write the GGUF LoRA adapter llama.cpp (and the embedded engine) loads
    gguf_adapter: bool = True
    #: also write the base with the adapter merged in, as one GGUF (none, f32, f16, q8_0)
    merged_gguf: Literal["none", "f32", "f16", "q8_0"] = "none"
    #: tensor type of the GGUF adapter
    gguf_adapter_type: Literal["f32", "f16"] = "f32"


class EvaluationSection(_Strict):
    #: exact (after trimming), contains (the expected text appears), json_schema (valid JSON matching `schema`)
    scorer: Literal["exact", "contains", "json_schema"] = "exact"
    #: a JSON Schema file for the json_schema scorer
    schema_file: str | None = Field(default=None, alias="schema")
    case_sensitive: bool = False
    max_tokens: Annotated[int, Field(ge=1)] = 64
    #: at most this many held-out rows are evaluated (0: all)
    limit: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _schema(self) -> EvaluationSection:
        if self.scorer == "json_schema" and not self.schema_file:
            raise ValueError("scorer json_schema needs `schema`: a JSON Schema file")
        return self


class Recipe(_Strict):
    name: str
    base: str = "embedded"
    method: Literal["sft", "dpo"] = "sft"
    tuning: Literal["lora", "full"] = "lora"
    #: where this job's compute runs; every data source must allow it
    jurisdiction: str = "local"
    #: the run folder (default: runs/<name>, relative to the recipe file)
    out: str | None = None
    data: DataSection
    lora: LoraSection = LoraSection()
    training: TrainingSection = TrainingSection()
    export: ExportSection = ExportSection()
    evaluation: EvaluationSection = EvaluationSection()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("1-64 of letters, digits, '_', '.', '-' (it names the adapter)")
        return v

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, v: str) -> str:
        return _check_jurisdictions((v,))[0]

    @model_validator(mode="after")
    def _combination(self) -> Recipe:
        if self.tuning == "full" and self.export.gguf_adapter and self.export.merged_gguf == "none":
            raise ValueError("export: full tuning has no adapter; set merged_gguf (f16, q8_0, ...) to get a GGUF")
        return self


class LoadedRecipe:
    """A validated recipe and the folder its relative paths are read from."""

    def __init__(self, recipe: Recipe, root: Path, source: str, raw: dict[str, Any]) -> None:
        self.recipe, self.root, self.source, self.raw = recipe, root, source, raw

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def out(self) -> Path:
        return self.path(self.recipe.out or f"runs/{self.recipe.name}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.lr=1e-4` -> (["training", "lr"], 0.0001); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"--set {text!r}: use dotted.field=value, e.g. training.lr=1e-4")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return [part for part in key.strip().split(".")], parsed


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = _copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise RecipeError(f"--set {text}: {'.'.join(path[:-1])} is not a section")
            node = child
        node[path[-1]] = value
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def format_errors(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        parts.append(f"{loc}: {msg}")
    return f"invalid recipe ({source}): " + "; ".join(parts)


def validate(raw: dict[str, Any], *, source: str = "<recipe>", root: Path | None = None) -> LoadedRecipe:
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise RecipeError(format_errors(exc, source)) from None
    return LoadedRecipe(recipe, root or Path.cwd(), source, raw)


def load(path: Path, overrides: Sequence[str] = ()) -> LoadedRecipe:
    """Read, override and validate a recipe file; `RecipeError` naming the field otherwise."""
    raw = read_mapping(path, "recipe", error=RecipeError, hint="(name, base, data, ...)")
    return validate(apply_overrides(raw, overrides), source=str(path), root=path.resolve().parent)
