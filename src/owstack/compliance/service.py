"""The audit log of one configured system: keys, facts, content keystore and writer, opened lazily.

log = AuditLog(config)
log.writer()                       -> the started AuditWriter (claims a stream)
audit_admin_event(config, "key.created", {"key_id": "k1"}, tenant="acme")
await audit_admin_event_async(log, "config.loaded", {...})
"""

from __future__ import annotations

import getpass
from typing import Any

from owstack.compliance.facts import config_hash, model_facts
from owstack.compliance.keys import AuditKeys, load_keys, load_master_key, resolve_paths
from owstack.compliance.keystore import ContentKeystore
from owstack.compliance.records import SystemFacts, admin_record
from owstack.compliance.writer import Appended, AuditWriter, node_name
from owstack.config.load import Config


class AuditLog:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.section = config.file.audit
        self.paths = resolve_paths(self.section)
        self._keys: AuditKeys | None = None
        self._facts: SystemFacts | None = None
        self._keystore: ContentKeystore | None = None
        #: the writer once started (`writer()`), read as an attribute on the request path
        self.current: AuditWriter | None = None
        #: the tenants whose content is kept (asked once per request: read from the configuration once)
        self._capturing = frozenset(
            name for name, section in config.file.tenants.items() if getattr(section, "capture_content", False)
        )

    @property
    def keys(self) -> AuditKeys:
        if self._keys is None:
            self._keys = load_keys(self.section, self.paths)
        return self._keys

    @property
    def facts(self) -> SystemFacts:
        if self._facts is None:
            s = self.section
            self._facts = SystemFacts(
                system_id=s.system_id,
                node=node_name(s),
                region=s.region,
                config_hash=config_hash(self.config),
                retention_days=s.retention_days,
                legal_hold=s.legal_hold,
                legal_hold_tenants=frozenset(s.legal_hold_tenants),
                models=model_facts(self.config),
            )
        return self._facts

    @property
    def keystore(self) -> ContentKeystore:
        if self._keystore is None:
            self._keystore = ContentKeystore(self.paths.keystore, load_master_key(self.section, self.paths))
        return self._keystore

    def captures(self, tenant: str) -> bool:
        return tenant in self._capturing

    def writer(self) -> AuditWriter:
        if self.current is None:
            self.current = AuditWriter(self.section, keys=self.keys).start()
        return self.current

    @property
    def started(self) -> bool:
        return self.current is not None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()


def local_actor() -> str:
    try:
        return f"os-user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os-user:unknown"


def audit_admin_event(
    config: Config,
    kind: str,
    details: dict[str, Any],
    *,
    actor: str | None = None,
    tenant: str | None = None,
    writer: AuditWriter | None = None,
) -> Appended | None:
    """Record an administrative event (durably, before returning). None when audit is disabled.

    Without `writer`, a stream is claimed, the record appended and the stream sealed again (the CLI's way).
    Raises `AuditUnavailable` (or `AuditKeyError`) when the log cannot be written.
    """
    if not config.file.audit.enabled:
        return None
    log = AuditLog(config)
    record = admin_record(kind, details, keys=log.keys, facts=log.facts, actor=actor or local_actor(), tenant=tenant)
    if writer is not None:
        return writer.append_sync(record)
    try:
        return log.writer().append_sync(record)
    finally:
        log.close()


async def audit_admin_event_async(
    log: AuditLog, kind: str, details: dict[str, Any], *, actor: str | None = None, tenant: str | None = None
) -> Appended | None:
    """The gateway's way: append to the log's own (already running) writer."""
    if not log.section.enabled:
        return None
    record = admin_record(kind, details, keys=log.keys, facts=log.facts, actor=actor or local_actor(), tenant=tenant)
    return await log.writer().append(record)
