"""The `audit:` config section.

    audit:
      enabled: true                      # on by default: see docs/compliance.md, "Why on by default"
      directory: owstack-audit           # the log: streams of segment files, manifests, public keys
      keys_directory: owstack-keys       # secrets, kept apart from the log (0700 directory, 0600 files)
      pseudonym_key: null                # HMAC key for actor/input/output pseudonyms: a path or env.NAME
      signing_key: null                  # Ed25519 checkpoint key: a path or env.NAME (base64/hex seed)
      master_key: null                   # wraps the per-tenant content keys: a path or env.NAME
      keystore: null                     # per-tenant content keys (default: <keys_directory>/content)
      checkpoint_every_records: 1000     # a signed checkpoint every N records ...
      checkpoint_every_s: 5.0            # ... or T seconds, whichever comes first (and at shutdown)
      group_commit_delay_ms: 0.0         # extra wait to gather a bigger fsync batch (0: none)
      segment_max_bytes: 67108864        # a new segment file past this size (and at each UTC day)
      retention_days: 183                # Arts. 19/26(6): at least six months
      legal_hold: false                  # true: nothing is pruned
      legal_hold_tenants: []             # segments holding these tenants' records are kept
      system_id: owstack                 # the AI system's identifier in every record
      region: null                       # free label (e.g. eu-west); the node name is the host name

Relative paths are relative to the config file's folder (without a config file: the data directory,
docs/configuration.md), like the SQLite default. Key fields left null mean a file of
that name in `keys_directory`, created (random, 0600) on first use.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from owstack.config.base import FilePath, Section

_SECRET_REF = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")
_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_RETENTION_DAYS = 183


class AuditSection(Section):
    #: write the Art. 12 record of every request and administrative event
    enabled: bool = True
    directory: FilePath = "owstack-audit"
    keys_directory: FilePath = "owstack-keys"
    pseudonym_key: FilePath | None = None
    signing_key: FilePath | None = None
    master_key: FilePath | None = None
    keystore: FilePath | None = None
    checkpoint_every_records: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    checkpoint_every_s: Annotated[float, Field(gt=0, le=86_400)] = 5.0
    group_commit_delay_ms: Annotated[float, Field(ge=0, le=100)] = 0.0
    segment_max_bytes: Annotated[int, Field(ge=4096)] = 64 * 1024 * 1024
    retention_days: Annotated[int, Field(ge=1)] = MIN_RETENTION_DAYS
    #: allow retention_days below six months (only where other law requires a shorter period)
    allow_short_retention: bool = False
    legal_hold: bool = False
    legal_hold_tenants: tuple[str, ...] = ()
    system_id: str = "owstack"
    region: str | None = None
    #: the node label in stream names and records (default: the host name)
    node: str | None = None

    @field_validator("pseudonym_key", "signing_key", "master_key")
    @classmethod
    def _key_reference(cls, v: str | None) -> str | None:
        if v is not None and v.startswith("env.") and not _SECRET_REF.match(v):
            raise ValueError("an environment reference looks like env.OWSTACK_AUDIT_KEY")
        return v

    @field_validator("node")
    @classmethod
    def _node(cls, v: str | None) -> str | None:
        if v is not None and not _NODE.match(v):
            raise ValueError("1-64 of letters, digits, '_', '.', '-'")
        return v

    @model_validator(mode="after")
    def _retention(self) -> AuditSection:
        if self.retention_days < MIN_RETENTION_DAYS and not self.allow_short_retention:
            raise ValueError(
                f"retention_days: {self.retention_days} is below six months ({MIN_RETENTION_DAYS} days, "
                "EU AI Act Arts. 19 and 26(6)); set allow_short_retention: true if other law requires it"
            )
        return self
