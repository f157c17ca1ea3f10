"""An API key's record as the store keeps it, and its row in `api_keys`, both ways.

KeyRecord          what is known about a key, without its secret or digest
new_record(...)    a validated record for `KeyStore.create` (ValueError naming the field)
row_values(...)    the record and its digest as `api_keys` columns
stored(row)        a row back as the cache keeps it (`Stored`: record, digest, expiry as epoch seconds)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from owstack.layers import LAYERS
from owstack.tenancy.expiry import parse_expires, to_utc

TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is known about a key, without its secret or digest."""

    key_id: str
    tenant: str
    #: the layers the key may use; None: every layer its tenant may use
    layers: frozenset[str] | None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    label: str | None = None
    #: may administer the console (`owstack keys create --admin`)
    admin: bool = False

    def status(self, now: datetime | None = None) -> str:
        """`active`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC)):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat()

        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "layers": None if self.layers is None else sorted(self.layers),
            "label": self.label,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "status": self.status(),
            "admin": self.admin,
        }


@dataclass(frozen=True, slots=True)
class Stored:
    record: KeyRecord
    digest: bytes
    #: expiry as epoch seconds, for a cheap check per request
    expires_ts: float | None


def new_record(
    tenant: str, layers: Iterable[str] | None, expires: datetime | str | None, label: str | None
) -> KeyRecord:
    if not isinstance(tenant, str) or not TENANT_NAME.match(tenant):
        raise ValueError(f"tenant {tenant!r}: 1-64 of letters, digits, '_', '.', ':', '-'")
    layer_set = None if layers is None else frozenset(layers)
    if layer_set is not None:
        unknown = sorted(layer_set - set(LAYERS))
        if unknown or not layer_set:
            raise ValueError(f"layers: {', '.join(unknown) or 'none given'}; the layers are {', '.join(LAYERS)}")
    now = datetime.now(UTC)
    moment = parse_expires(expires, now=now) if isinstance(expires, str) else expires
    if moment is not None:
        moment = to_utc(moment)
        if moment <= now:
            raise ValueError("expires: the moment is in the past")
    if label is not None and (len(label) > 200 or not label.isprintable()):
        raise ValueError("label: at most 200 printable characters")
    return KeyRecord(key_id="", tenant=tenant, layers=layer_set, created_at=now, expires_at=moment, label=label)


def row_values(record: KeyRecord, digest: bytes) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "tenant": record.tenant,
        "secret_sha256": digest,
        "layers": None if record.layers is None else ",".join(sorted(record.layers)),
        "label": record.label,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": None,
        "admin": record.admin,
    }


def stored(row: Any) -> Stored:
    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else to_utc(moment)

    expires_at = utc(row.expires_at)
    record = KeyRecord(
        key_id=row.key_id,
        tenant=row.tenant,
        layers=None if row.layers is None else frozenset(filter(None, row.layers.split(","))),
        created_at=to_utc(row.created_at),
        expires_at=expires_at,
        revoked_at=utc(row.revoked_at),
        label=row.label,
        admin=bool(row.admin),
    )
    return Stored(
        record=record,
        digest=bytes(row.secret_sha256),
        expires_ts=expires_at.timestamp() if expires_at else None,
    )
