"""The `limits:` config section: where the shared counters live and what happens when they cannot be read.

    redis: "redis://127.0.0.1:6379/0"   # top level; null: every gateway process counts on its own
    limits:
      prefix: "owstack:"                # Redis keys: <prefix>{<tenant>}:rpm, :tpm, :usd:<YYYY-MM>
      on_redis_error: allow             # allow (fail open, logged and counted) | deny (503, fail closed)
      on_redis_error_budget: deny       # the same for tenants with a budget_usd_month (a budget is money)
      redis_timeout_ms: 250             # connect and command timeout of one Redis call
      redis_retry_s: 1.0                # after a Redis error, apply on_redis_error without trying for this long
      redis_max_connections: 64         # the process's pool; more concurrent checks wait for a connection
      flush_interval_ms: 100            # longest a process holds token corrections and charges before sending
      completion_estimate_tokens: 512   # reserved for a request that does not say `max_tokens`
      reserve_seconds: 60               # a budget hold on a time-priced backend: this long on it
      reservation_ttl_s: 900            # a budget hold lapses after this long (its process died)
      seed_from_ledger: true            # start an empty month-to-date spend from the ledger's cost_usd

The caps themselves are per tenant (`tenants.<name>.requests_per_minute`, `tokens_per_minute`,
`budget_usd_month`); without any, the limit stage is not installed.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from owstack.config.base import Section

_PREFIX = re.compile(r"^[A-Za-z0-9_.:/-]{0,64}$")


class LimitsSection(Section):
    #: prefix of every Redis key the limiter writes (give each gateway fleet its own when they share a Redis)
    prefix: str = "owstack:"
    #: what a request gets while Redis cannot be reached: `allow` (served unchecked; a warning is logged and
    #: `owstack_limit_unchecked_total` counts it) or `deny` (503 `limits_unavailable`)
    on_redis_error: Literal["allow", "deny"] = "allow"
    #: the same for a tenant with `budget_usd_month`: by default its requests are refused (503) while the
    #: shared spend cannot be checked, since serving them unchecked could spend past the budget
    on_redis_error_budget: Literal["allow", "deny"] = "deny"
    #: connect and command timeout of one Redis call, in milliseconds
    redis_timeout_ms: Annotated[int, Field(ge=1, le=60_000)] = 250
    #: after a Redis error, requests skip Redis (and follow `on_redis_error`) for this many seconds
    redis_retry_s: Annotated[float, Field(ge=0, le=600)] = 1.0
    #: Redis connections per gateway process; checks beyond it wait (up to the timeout) for a free one
    redis_max_connections: Annotated[int, Field(ge=1, le=10_000)] = 64
    #: a process sends its token corrections and charges with the tenant's next reservation, or after at most
    #: this long (so other processes see a charge within it)
    flush_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 100
    #: completion tokens reserved against `tokens_per_minute` for a request without `max_tokens`
    completion_estimate_tokens: Annotated[int, Field(ge=0)] = 512
    #: a budget hold prices a request on a time-priced backend (self-hosted `hardware:`, the embedded engine)
    #: as this many seconds on it; a longer request can pass the budget by its excess (docs/tenancy.md)
    reserve_seconds: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    #: a budget hold not released within this long lapses: the holds of a process that died (or lost Redis
    #: for good) stop counting against the tenant. Keep it above the longest request.
    reservation_ttl_s: Annotated[float, Field(ge=1, le=86_400)] = 900.0
    #: at start, an empty month-to-date spend counter is filled from the ledger (`storage.url`)
    seed_from_ledger: bool = True

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _PREFIX.match(v):
            raise ValueError("at most 64 of letters, digits and _ . : / - (e.g. owstack: or prod-eu:owstack:)")
        return v


def check_redis_url(url: str) -> str:
    """`url` if redis-py can use it (redis://, rediss://, unix://), else ValueError saying what is wrong
    (never echoing a password). For the top-level `redis:` field's validator."""
    from urllib.parse import urlsplit

    usage = "use redis://[:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS) or unix:///PATH"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        raise ValueError(f"not a Redis URL (bad port or address); {usage}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported scheme {parts.scheme + '://' if parts.scheme else '(none)'}; {usage}")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"unix:// needs a socket path; {usage}")
        return url
    if not parts.hostname:
        raise ValueError(f"no host; {usage}")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database must be a number (/0), got /{db}; {usage}")
    return url


def limits_section(config: object) -> LimitsSection:
    """The config's `limits:` section, or the defaults while the schema has none."""
    section = getattr(getattr(config, "file", None), "limits", None)
    return section if isinstance(section, LimitsSection) else LimitsSection()
