"""The in-process limiter: buckets and month-to-date spend in dicts, for one gateway process.

Every method runs on the event loop without awaiting anything, so a check-and-take is atomic with
respect to other requests of the process. With several worker processes (or hosts), each counts on its
own: N processes admit up to N times the caps. Configure `redis:` to share them.

Nothing accumulates: there is one entry per configured tenant and cap, and the spend of a month is
dropped when the next month's is first touched.
"""

from __future__ import annotations

from owstack.tenancy.limits.bucket import Decision, Month, Rule, conforms, drain, micros, month_of, wait_s


class MemoryLimiter:
    def __init__(self) -> None:
        #: (tenant, "rpm" | "tpm") -> [level, last_us]
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._spend: dict[str, float] = {}
        self._month: Month | None = None

    def _spend_map(self, now: float) -> dict[str, float]:
        month = month_of(now, self._month)
        if month is not self._month:
            if self._month is not None and month.key != self._month.key:
                self._spend = {}
            self._month = month
        return self._spend

    def _level(self, tenant: str, cap: str, limit: int, now_us: int) -> list[float]:
        state = self._buckets.get((tenant, cap))
        if state is None:
            state = self._buckets[(tenant, cap)] = [0.0, float(now_us)]
        level, last = drain(state[0], int(state[1]), now_us, limit)
        state[0], state[1] = level, float(last)
        return state

    async def reserve(self, tenant: str, rule: Rule, tokens: int, now: float) -> Decision:
        spent = 0.0
        if rule.budget_usd is not None:
            spent = self._spend_map(now).get(tenant, 0.0)
            if spent >= rule.budget_usd:
                return Decision(False, "budget", month_of(now, self._month).end - now, spent_usd=spent)
        now_us = micros(now)
        req = self._level(tenant, "rpm", rule.rpm, now_us) if rule.rpm else None
        tok = self._level(tenant, "tpm", rule.tpm, now_us) if rule.tpm else None
        reason, retry = None, 0.0
        if req is not None and rule.rpm and not conforms(req[0], 1, rule.rpm):
            reason, retry = "requests", wait_s(req[0], 1, rule.rpm)
        if tok is not None and rule.tpm and not conforms(tok[0], tokens, rule.tpm):
            reason, retry = reason or "tokens", max(retry, wait_s(tok[0], tokens, rule.tpm))
        if reason is None:
            if req is not None:
                req[0] += 1
            if tok is not None:
                tok[0] += tokens
        return Decision(
            reason is None,
            reason,
            retry,
            req[0] if req is not None else 0.0,
            tok[0] if tok is not None else 0.0,
            spent,
        )

    async def settle(self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float) -> None:
        if token_delta and rule.tpm:
            state = self._level(tenant, "tpm", rule.tpm, micros(now))
            state[0] = max(state[0] + token_delta, 0.0)
        if cost_usd:
            spend = self._spend_map(now)
            spend[tenant] = spend.get(tenant, 0.0) + cost_usd

    async def flush(self) -> None:
        return None

    async def spent(self, tenant: str, now: float) -> float:
        return self._spend_map(now).get(tenant, 0.0)

    async def seed(self, tenant: str, usd: float, now: float) -> bool:
        spend = self._spend_map(now)
        if tenant in spend:
            return False
        spend[tenant] = usd
        return True

    async def aclose(self) -> None:
        return None
