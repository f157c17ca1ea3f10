"""The `responses:` config section: how the Responses API keeps responses (`store`, `previous_response_id`).

    responses:
      store: true             # keep responses a client asks to store (the API's default is store: true)
      retention_days: 30      # stored responses are deleted after this (OpenAI's own default is 30 days)
      jurisdiction: local     # where the store's database is; a tenant whose jurisdictions do not cover
                              # it gets its responses answered but not stored (`store: false` in the reply)
      max_background: 64      # background responses running at once per gateway process
      background_lease_s: 30  # a background response's row is leased by the process running it, which
                              # renews the lease every third of this; a queued/in_progress row whose lease
                              # ran out (its process was killed or lost) is read, and stored, as failed

Responses live in the database of `storage.url` (SQLite default, PostgreSQL), scoped to the tenant, and are
erased with the tenant (`owstack tenants erase`).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from owstack.config.base import Section


class ResponsesSection(Section):
    store: bool = True
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    jurisdiction: str = "local"
    max_background: Annotated[int, Field(ge=1, le=10_000)] = 64
    #: how long a background response's lease lasts without a heartbeat (one every third of it); the same on
    #: every replica sharing `storage.url`, and well above their clocks' skew (docs/api.md)
    background_lease_s: Annotated[float, Field(ge=1, le=3600)] = 30.0

    @field_validator("jurisdiction")
    @classmethod
    def _label(cls, v: str) -> str:
        if not re.match(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$", v):
            raise ValueError("a lowercase label such as eu, us, local or eu-fr")
        return v
