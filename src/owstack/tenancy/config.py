"""The `tenants:` entries: one `TenantSection` per tenant name.

    tenants:
      acme-eu:
        jurisdictions: [eu, local]     # where its data may go (hierarchical: `eu` also allows `eu-fr`)
        layers: [coding, edge]         # the layers its keys may use (omit: all)
        reasoning: concise             # its reasoning policy (see owstack.efficiency.policies)
        capture_content: false         # keep prompts and completions in the audit log (encrypted)
        finetune_consent: false        # its captured content may train models (`owstack finetune`)
        allow_proprietary: false       # may reach backends marked `proprietary: true` (in its jurisdictions)
        budget_usd_month: 500          # spending cap (self-hosted cost), enforced by the limit stage
        requests_per_minute: 600
        tokens_per_minute: 200000

Every field has a default, and the defaults are the safe ones: data stays on this host (`local`), no
proprietary API, no content captured, no budget or rate cap.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from owstack.config.base import Section

#: a jurisdiction label: `eu`, `us`, `local`, or a finer one such as `eu-fr` or `us-east1`
JURISDICTION = re.compile(r"^[a-z]{2,8}(-[a-z0-9]{1,8})*$")


class TenantSection(Section):
    #: where the tenant's data may go; a label also allows its finer labels (`eu` allows `eu-fr`)
    jurisdictions: tuple[str, ...] = ("local",)
    #: the layers the tenant's keys may use; None: every layer
    layers: tuple[str, ...] | None = None
    #: reasoning policy (`off`, `budget:N`, `concise`, `concise:v2`, `default`); None: the layer's policy
    reasoning: str | None = None
    #: keep request and response content in the audit log (encrypted, erasable); off: hashes only
    capture_content: bool = False
    #: its captured content may become fine-tuning data (decrypted only inside the training job)
    finetune_consent: bool = False
    #: may reach backends marked `proprietary: true`, and then only those in `jurisdictions`
    allow_proprietary: bool = False
    #: monthly spending cap in US dollars (self-hosted cost); None: no cap
    budget_usd_month: Annotated[float, Field(ge=0)] | None = None
    #: request and token rate caps per minute; None: no cap
    requests_per_minute: Annotated[int, Field(ge=1)] | None = None
    tokens_per_minute: Annotated[int, Field(ge=1)] | None = None

    @field_validator("jurisdictions")
    @classmethod
    def _jurisdictions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("needs at least one jurisdiction label (e.g. [local] or [eu, local])")
        for label in v:
            if not JURISDICTION.match(label):
                raise ValueError(f"{label!r} is not a jurisdiction label: lowercase, such as eu, us, local or eu-fr")
        return tuple(dict.fromkeys(v))

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # which names are layers (and that there is one at least): config/references.py
        return None if v is None else tuple(dict.fromkeys(v))

    @field_validator("reasoning")
    @classmethod
    def _reasoning(cls, v: str | None) -> str | None:
        if v is not None:
            check_policy(v)
        return v

    def allows_layer(self, layer: str) -> bool:
        return self.layers is None or layer in self.layers


def check_policy(text: str) -> None:
    """Validate a reasoning policy with the efficiency package's parser; ValueError with its message."""
    try:
        from owstack.efficiency.policies import parse_policy
    except ModuleNotFoundError:  # the efficiency package not installed: accept the shape only
        if not re.fullmatch(r"[a-z]+(:\s*[a-z0-9]+)?", text.strip().lower()):
            raise ValueError(f"{text!r} is not a reasoning policy (e.g. off, budget:512, concise)") from None
        return
    from owstack.errors import InvalidRequest

    try:
        parse_policy(text, param="reasoning")
    except InvalidRequest as exc:
        raise ValueError(exc.message.removeprefix("reasoning: ")) from None


class KeysSection(Section):
    """The `keys:` section: how the gateway caches API keys, and what it does while the key store (the
    database at `storage.url`) cannot be reached.

        keys:
          cache_ttl_s: 60          # a key's row is read again after this long
          negative_ttl_s: 30       # an unknown key id is asked again after this long
          revision_check_s: 1.0    # creations and revocations reach the gateway within about this long
          lookup_timeout_s: 2.0    # the longest a request waits for the key store
          outage_grace_s: 3600     # while the store is unreachable, keys seen in this long keep working
          max_cached: 10000        # keys kept in memory (least recently used out first)
    """

    cache_ttl_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    negative_ttl_s: Annotated[float, Field(ge=0, le=86_400)] = 30.0
    revision_check_s: Annotated[float, Field(gt=0, le=3_600)] = 1.0
    lookup_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: while the key store cannot be reached, a key whose row was read less than `cache_ttl_s +
    #: outage_grace_s` ago keeps working (a revocation made meanwhile is honoured once the store answers
    #: again); keys never seen are refused with 503. 0: fail closed once `cache_ttl_s` has passed.
    outage_grace_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 3600.0
    max_cached: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000
