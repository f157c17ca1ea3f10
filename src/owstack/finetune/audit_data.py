"""Training rows from owstack's own audit log: a consenting tenant's captured requests, decrypted in the job.

The gateway keeps request content only for tenants with `capture_content: true`, sealed (AES-256-GCM)
under the tenant's content key, which the master key wraps (compliance/keystore.py); the hash chain holds
only ciphertext. A job may read it only when the tenant also sets `finetune_consent: true`. Only that
tenant's `inference.request` records are read; each is decrypted with that tenant's key and the record's
event id as associated data, so another tenant's record cannot be opened under this tenant's name.
Plaintext stays in memory: the held-out split keeps audit rows as `audit:<event id>` references.

A record whose key was destroyed (`owstack tenants erase`: crypto-shredding) cannot be decrypted and is
skipped and counted; so are requests that failed, or carried images or tool calls.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from owstack.finetune.data import AUDIT_REF, Example, Source
from owstack.finetune.errors import DataError, SovereigntyError
from owstack.finetune.recipe import AuditSource
from owstack.finetune.rows import normalise

REQUEST = "inference.request"


@dataclass(slots=True)
class Skipped:
    failed: int = 0
    erased: int = 0
    not_text: int = 0
    no_content: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"failed": self.failed, "erased": self.erased, "not_text": self.not_text, "no_content": self.no_content}


@dataclass(slots=True)
class AuditRows:
    examples: list[Example]
    source: Source
    skipped: Skipped = field(default_factory=Skipped)


def open_config(source: AuditSource, root: Path) -> Any:
    from owstack.config.load import load
    from owstack.errors import ConfigError

    path = None
    if source.config:
        path = Path(source.config).expanduser()
        path = path if path.is_absolute() else root / path
    try:
        return load(path)
    except ConfigError as exc:
        raise DataError(f"data.audit.config: {exc}") from None


def tenant_section(config: Any, tenant: str) -> Any:
    section = config.file.tenants.get(tenant)
    if section is None:
        known = ", ".join(sorted(config.file.tenants)) or "none configured"
        raise SovereigntyError(f"data.audit.tenant: no tenant {tenant!r} in {config.source} (tenants: {known})")
    if not section.capture_content:
        raise SovereigntyError(
            f"tenant {tenant!r} does not capture content (capture_content: false): no rows to train on"
        )
    if not section.finetune_consent:
        raise SovereigntyError(
            f"tenant {tenant!r} has not consented to fine-tuning on its traffic: set finetune_consent: true "
            f"in its tenants entry ({config.source}) once the tenant agrees"
        )
    return section


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "\n".join(p["text"] for p in content)
    return None


def _row(content: dict[str, Any]) -> dict[str, Any] | None:
    """A chat row from captured content, or None when it is not plain text."""
    if content.get("tool_calls"):
        return None
    messages = []
    for message in content.get("messages") or []:
        text = _text(message.get("content")) if isinstance(message, dict) else None
        if text is None or message.get("role") not in ("system", "user", "assistant") or message.get("tool_calls"):
            return None
        messages.append({"role": message["role"], "content": text})
    output = content.get("output")
    if not isinstance(output, str) or not output.strip() or not messages:
        return None
    return {"messages": [*messages, {"role": "assistant", "content": output}]}


def _records(log_dir: Path, source: AuditSource) -> Iterator[dict[str, Any]]:
    from owstack.compliance.export import records

    for record in records(log_dir, since=source.since, until=source.until, types=(REQUEST,)):
        actor = record.get("actor") or {}
        if record.get("type") == REQUEST and actor.get("tenant") == source.tenant:
            yield record


def _ok(record: dict[str, Any]) -> bool:
    outcome, output = record.get("outcome") or {}, record.get("output") or {}
    return outcome.get("status") == 200 and output.get("finish_reason") == "stop"


def read_audit(
    source: AuditSource, root: Path, method: str, train_on: str, only: Collection[str] | None = None
) -> AuditRows:
    """The tenant's captured requests as examples (`only`: these event ids, for the held-out split)."""
    from owstack.compliance.keys import AuditKeyError
    from owstack.compliance.keystore import ContentUnavailable
    from owstack.compliance.service import AuditLog

    if method != "sft":
        raise DataError("data.audit: captured traffic has no preference pairs; use method: sft")
    config = open_config(source, root)
    section = tenant_section(config, source.tenant)
    log = AuditLog(config)
    try:
        keystore = log.keystore
    except AuditKeyError as exc:
        raise DataError(f"data.audit: cannot open the content keystore: {exc}") from None
    skipped, examples, digest, rows = Skipped(), [], hashlib.sha256(), 0
    for record in _records(log.paths.directory, source):
        event = str(record.get("event_id"))
        if only is not None and event not in only:
            continue
        if source.successful_only and not _ok(record):
            skipped.failed += 1
            continue
        sealed = record.get("content")
        if not isinstance(sealed, dict):
            skipped.no_content += 1
            continue
        try:
            content = keystore.open(source.tenant, event, sealed)
        except ContentUnavailable:
            skipped.erased += 1
            continue
        row = _row(content)
        if row is None:
            skipped.not_text += 1
            continue
        rows += 1
        digest.update(f"{event}:{record.get('entry_hash')}\n".encode())
        examples += [Example(item, AUDIT_REF + event) for item in normalise(row, f"audit {event}", "sft", train_on)]
    if not examples and only is None:
        raise DataError(f"data.audit: no usable captured requests of tenant {source.tenant!r} ({skipped.to_dict()})")
    details = {"tenant": source.tenant, "since": source.since, "until": source.until, "skipped": skipped.to_dict()}
    src = Source(
        "audit", f"audit:{source.tenant}", digest.hexdigest(), rows, len(examples), section.jurisdictions, details
    )
    return AuditRows(examples, src, skipped)
