"""The in-process limiter: buckets, month-to-date spend and budget holds in dicts, for one gateway process.

Every method runs on the event loop without awaiting anything, so a check-and-take is atomic with
respect to other requests of the process. With several worker processes (or hosts), each counts on its
own: N processes admit up to N times the caps. Configure `redis:` to share them.

Nothing accumulates: there is one entry per configured tenant and cap, the spend of a month is dropped
when the next month's is first touched, and a hold lives until it is released or its expiry passes.
"""

from __future__ import annotations

import heapq

from owstack.tenancy.limits.bucket import (
    EPS,
    Decision,
    Hold,
    Month,
    Rule,
    conforms,
    drain,
    micros,
    month_of,
    wait_s,
)


class Holds:
    """One tenant's budget reservations in flight: id -> (usd, expiry), their sum, and a heap of expiries
    (entries of released holds are skipped when they surface, and compacted away when they dominate)."""

    __slots__ = ("by_id", "expiries", "total")

    def __init__(self) -> None:
        self.by_id: dict[str, tuple[float, float]] = {}
        self.expiries: list[tuple[float, str]] = []
        self.total = 0.0

    def add(self, hold: Hold, now: float) -> None:
        expires = now + hold.ttl_s
        self.by_id[hold.id] = (hold.usd, expires)
        heapq.heappush(self.expiries, (expires, hold.id))
        self.total += hold.usd
        if len(self.expiries) > 2 * len(self.by_id) + 64:
            self.expiries = [(exp, i) for i, (_, exp) in self.by_id.items()]
            heapq.heapify(self.expiries)

    def release(self, hold_id: str) -> None:
        held = self.by_id.pop(hold_id, None)
        if held is not None:
            self.total -= held[0]
        if not self.by_id:
            self.total = 0.0  # no drift of float sums once nothing is held

    def lapse(self, now: float) -> None:
        """Drop the holds whose expiry has passed (their process died, or the request outlived the TTL)."""
        expiries = self.expiries
        while expiries and expiries[0][0] <= now:
            expires, hold_id = heapq.heappop(expiries)
            held = self.by_id.get(hold_id)
            if held is not None and held[1] == expires:
                self.release(hold_id)


class MemoryLimiter:
    def __init__(self) -> None:
        #: (tenant, "rpm" | "tpm") -> [level, last_us]
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._spend: dict[str, float] = {}
        self._holds: dict[str, Holds] = {}
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

    async def reserve(self, tenant: str, rule: Rule, tokens: int, now: float, hold: Hold | None = None) -> Decision:
        spent = held = 0.0
        holds = None
        if rule.budget_usd is not None:
            spent = self._spend_map(now).get(tenant, 0.0)
            holds = self._holds.get(tenant)
            if holds is None:
                holds = self._holds[tenant] = Holds()
            holds.lapse(now)
            held = holds.total
            cost = hold.usd if hold is not None else 0.0
            if spent >= rule.budget_usd or (cost > 0.0 and spent + held + cost > rule.budget_usd + EPS):
                until = month_of(now, self._month).end - now
                return Decision(False, "budget", until, spent_usd=spent, held_usd=held)
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
            if holds is not None and hold is not None and hold.usd > 0.0:
                holds.add(hold, now)
                held = holds.total
        return Decision(
            reason is None,
            reason,
            retry,
            req[0] if req is not None else 0.0,
            tok[0] if tok is not None else 0.0,
            spent,
            held,
        )

    async def settle(
        self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        if token_delta and rule.tpm:
            state = self._level(tenant, "tpm", rule.tpm, micros(now))
            state[0] = max(state[0] + token_delta, 0.0)
        if hold is not None:
            holds = self._holds.get(tenant)
            if holds is not None:
                holds.release(hold.id)
        if cost_usd:
            spend = self._spend_map(now)
            spend[tenant] = spend.get(tenant, 0.0) + cost_usd

    async def flush(self) -> None:
        return None

    async def spent(self, tenant: str, now: float) -> float:
        return self._spend_map(now).get(tenant, 0.0)

    async def held(self, tenant: str, now: float) -> float:
        """USD reserved by requests in flight (lapsed holds dropped first)."""
        holds = self._holds.get(tenant)
        if holds is None:
            return 0.0
        holds.lapse(now)
        return holds.total

    async def seed(self, tenant: str, usd: float, now: float) -> bool:
        spend = self._spend_map(now)
        if tenant in spend:
            return False
        spend[tenant] = usd
        return True

    async def aclose(self) -> None:
        return None
