"""Rate caps and monthly budgets per tenant: pipeline stage 6 (`limit`).

    owstack.tenancy.limits.config       LimitsSection: the `limits:` section (key prefix, on_redis_error ...)
    owstack.tenancy.limits.bucket       the arithmetic (GCRA), Rule, Decision, the Limiter protocol
    owstack.tenancy.limits.memory       MemoryLimiter: per process (no `redis:`)
    owstack.tenancy.limits.redis_store  RedisLimiter: shared by every process and host (Lua, one round trip)
    owstack.tenancy.limits.usage        token estimates, tokens used, a request's cost, ledger seeding
    owstack.tenancy.limits.stage        LimitStage, has_limits
    owstack.tenancy.limits.metrics      LimitsCollector (Prometheus)

Importing this package loads nothing but itself: the names below are resolved on first use, and
redis-py only when `redis:` is configured. docs/tenancy.md ("Rate limits and budgets") has the details.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LimitStage", "has_limits"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from owstack.tenancy.limits import stage

        return getattr(stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
