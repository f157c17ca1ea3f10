"""The shared limiter, on Redis: every gateway process and host checks and takes from the same keys.
(Imported only when `redis:` is set.)

Per tenant, under the configured prefix (`owstack:` by default; `{tenant}` is a Redis Cluster hash tag,
so one tenant's keys live in one slot and one script may touch them all):

    <prefix>{<tenant>}:rpm              hash {l: level, t: last update in µs}; expires when it has drained
    <prefix>{<tenant>}:tpm              the same for tokens
    <prefix>{<tenant>}:usd:<YYYY-MM>    month-to-date spend (INCRBYFLOAT); expires 7 days after the month
    <prefix>{<tenant>}:holds            budget holds in flight: a sorted set, member `<id>|<usd>`, score
                                        its expiry in µs (a process that died leaves holds that lapse)
    <prefix>{<tenant>}:held             their sum (INCRBYFLOAT; deleted whenever the set is empty)

`reserve` is one EVALSHA (one round trip; the reservations of concurrent requests share a pipeline, see
`autopipe`): lapsed holds dropped, the budget check with this request's hold on top of the spend and the
holds in flight, both buckets' check-and-take, and the new hold run in one Lua script, which Redis
executes atomically, so concurrent requests from any number of processes never take more than the caps
and the budget allow (no count is kept in local memory). `settle` does no I/O: the process sums each
tenant's token corrections and charges and lists the holds to release, and sends them with the tenant's
next reservation (in the same script, applied before the check) or, for a tenant with no new request, in
one pipelined flush within `flush_interval_s` (0.1 s). A request thus costs one round trip, and another
process sees a charge within that interval (its hold stays held until then, which errs toward the
budget). A call that fails keeps its corrections for the next try: if Redis did run it but the answer was
lost, the charges count twice, which errs toward the caps (a release is applied once: only a hold still in
the set is subtracted). A script unknown to the server (NOSCRIPT, after a restart or SCRIPT FLUSH) is
sent once with EVAL, which also caches it again.

Times come from the gateway's clock (passed in, integer µs): keep the hosts' clocks in sync (NTP); a skew
of d seconds shifts a cap by about d x rate units, nothing at per-minute caps with millisecond skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from owstack.tenancy.limits.autopipe import AutoPipeline, Script
from owstack.tenancy.limits.bucket import Decision, Hold, LimiterUnavailable, Month, Rule, micros, month_of

log = logging.getLogger(__name__)

#: how long a month's spend key outlives the month (for operators to read it back)
SPEND_KEEP_S = 7 * 86400

_COMMON = """
local period = 60000000
local function load(key, limit, now)
  local v = redis.call('HMGET', key, 'l', 't')
  local level, last = tonumber(v[1]) or 0, tonumber(v[2]) or now
  if now > last then
    level = level - (now - last) * (limit / period)
    if level < 0 then level = 0 end
    last = now
  end
  return level, last
end
local function store(key, level, last, limit)
  redis.call('HSET', key, 'l', string.format('%.17g', level), 't', string.format('%.0f', last))
  redis.call('PEXPIRE', key, math.ceil(level * period / limit / 1000) + 1000)
end
"""

#: Correct the token bucket by a delta, charge a cost to the month and release holds (used by both scripts).
_SETTLE_BODY = """
local function release(holds_key, held_key, members, first, n)
  for i = first, first + n - 1 do
    local m = members[i]
    if redis.call('ZREM', holds_key, m) == 1 then
      redis.call('INCRBYFLOAT', held_key, -tonumber(string.match(m, '|([^|]*)$')))
    end
  end
  if n > 0 and redis.call('ZCARD', holds_key) == 0 then redis.call('DEL', held_key) end
end
local function lapse(holds_key, held_key, now)
  local gone = redis.call('ZRANGEBYSCORE', holds_key, '-inf', now, 'LIMIT', 0, 256)
  if #gone > 0 then release(holds_key, held_key, gone, 1, #gone) end
end
local function settle(tok_key, usd_key, now, tpm, delta, cost, expire_at)
  if tpm > 0 and delta ~= 0 then
    local level, last = load(tok_key, tpm, now)
    level = level + delta
    if level > 0 then store(tok_key, level, last, tpm) else redis.call('DEL', tok_key) end
  end
  if tonumber(cost) > 0 then
    redis.call('INCRBYFLOAT', usd_key, cost)
    redis.call('EXPIREAT', usd_key, expire_at)
  end
end
"""

#: KEYS: request bucket, token bucket, month spend, holds, held. ARGV: now µs, rpm (0: none), tpm (0: none),
#: tokens, budget ('': none), then this process's pending correction for the tenant: token delta, cost USD,
#: spend expiry (epoch s), then this request's hold: id, USD ('0': none), TTL µs, then the number of holds
#: to release and their members. Returns {code (0 ok, 1 requests, 2 tokens, 3 budget), wait µs, request
#: level, token level, spend, held}.
RESERVE = (
    _COMMON
    + _SETTLE_BODY
    + """
local now = tonumber(ARGV[1])
local rpm, tpm, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
settle(KEYS[2], KEYS[3], now, tpm, tonumber(ARGV[6]), ARGV[7], ARGV[8])
release(KEYS[4], KEYS[5], ARGV, 13, tonumber(ARGV[12]))
local hold_usd = tonumber(ARGV[10])
local spent, held = '0', 0
if ARGV[5] ~= '' then
  lapse(KEYS[4], KEYS[5], now)
  spent = redis.call('GET', KEYS[3]) or '0'
  held = tonumber(redis.call('GET', KEYS[5]) or '0')
  local budget = tonumber(ARGV[5])
  if tonumber(spent) >= budget or (hold_usd > 0 and tonumber(spent) + held + hold_usd > budget + 1e-9) then
    return {3, 0, '0', '0', spent, string.format('%.17g', held)}
  end
end
local code, wait = 0, 0
local rl, rt, tl, tt = 0, now, 0, now
if rpm > 0 then
  rl, rt = load(KEYS[1], rpm, now)
  if rl + 1 > rpm + 1e-9 then code = 1; wait = (rl + 1 - rpm) * period / rpm end
end
if tpm > 0 then
  tl, tt = load(KEYS[2], tpm, now)
  if tl + n > tpm + 1e-9 then
    if code == 0 then code = 2 end
    wait = math.max(wait, (tl + n - tpm) * period / tpm)
  end
end
if code == 0 then
  if rpm > 0 then rl = rl + 1; store(KEYS[1], rl, rt, rpm) end
  if tpm > 0 then tl = tl + n; store(KEYS[2], tl, tt, tpm) end
  if hold_usd > 0 then
    local ttl_us = tonumber(ARGV[11])
    redis.call('ZADD', KEYS[4], now + ttl_us, ARGV[9] .. '|' .. ARGV[10])
    held = tonumber(redis.call('INCRBYFLOAT', KEYS[5], ARGV[10]))
    local keep_ms = math.ceil(ttl_us / 1000) + 60000
    redis.call('PEXPIRE', KEYS[4], keep_ms)
    redis.call('PEXPIRE', KEYS[5], keep_ms)
  end
end
return {code, math.ceil(wait), string.format('%.17g', rl), string.format('%.17g', tl), spent,
        string.format('%.17g', held)}
"""
)

#: KEYS: token bucket, month spend, holds, held. ARGV: now µs, tpm (0: none), token delta, cost USD, spend
#: expiry (epoch s), the number of holds to release and their members.
SETTLE = (
    _COMMON
    + _SETTLE_BODY
    + """
settle(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
release(KEYS[3], KEYS[4], ARGV, 7, tonumber(ARGV[6]))
return 1
"""
)

_REASONS = {1: "requests", 2: "tokens", 3: "budget"}


@dataclass(slots=True)
class Pending:
    """A tenant's corrections this process has not sent yet."""

    tpm: int
    delta: int
    cost: float
    now: float  # the latest settlement's time
    #: holds to release (their members in the tenant's holds set)
    releases: list[str] = field(default_factory=list)


def member(hold: Hold) -> str:
    """A hold's member in the holds set: its id and amount (the script reads the amount back from it)."""
    return f"{hold.id}|{float(hold.usd)!r}"


class RedisLimiter:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "owstack:",
        timeout_s: float = 0.25,
        max_connections: int = 64,
        flush_interval_s: float = 0.1,
    ) -> None:
        """No I/O here: connections are opened by the first command (on the event loop that runs it)."""
        self.prefix = prefix
        self.flush_interval_s = flush_interval_s
        self._pool = aredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # the stage decides what an error means; no hidden retries
        )
        self.client = aredis.Redis(connection_pool=self._pool)
        self._reserve = Script(RESERVE)
        #: reservations of concurrent requests share a pipeline
        self._pipe = AutoPipeline(self.client, self._reserve)
        self._settle = Script(SETTLE)
        self._keys: dict[str, tuple[str, str, str, str, str]] = {}
        self._month: Month | None = None
        self._pending: dict[str, Pending] = {}
        self._flusher: asyncio.Task[None] | None = None

    def keys(self, tenant: str, now: float) -> tuple[str, str, str, str, str]:
        """(request bucket, token bucket, this month's spend, holds, held) for `tenant`."""
        month = month_of(now, self._month)
        if month is not self._month:
            self._month, self._keys = month, {}
        keys = self._keys.get(tenant)
        if keys is None:
            base = f"{self.prefix}{{{tenant}}}"
            keys = self._keys[tenant] = (
                f"{base}:rpm",
                f"{base}:tpm",
                f"{base}:usd:{month.key}",
                f"{base}:holds",
                f"{base}:held",
            )
        return keys

    def _expiry(self) -> int:
        assert self._month is not None
        return int(self._month.end) + SPEND_KEEP_S

    async def _run(self, call: Awaitable[Any]) -> Any:
        """Await one Redis call; any failure to get an answer is `LimiterUnavailable`."""
        try:
            return await call
        except (TimeoutError, RedisError, OSError) as exc:
            raise LimiterUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def reserve(self, tenant: str, rule: Rule, tokens: int, now: float, hold: Hold | None = None) -> Decision:
        keys = self.keys(tenant, now)
        month = self._month
        assert month is not None
        budget = "" if rule.budget_usd is None else repr(float(rule.budget_usd))
        held = self._pending.pop(tenant, None)
        if held is not None and held.now < month.start:  # last month's charge: the flush sends it there
            self._pending[tenant], held = held, None
        args: tuple[Any, ...] = (micros(now), rule.rpm or 0, rule.tpm or 0, tokens, budget)
        if held is not None:
            args += (held.delta, repr(held.cost), self._expiry())
        else:
            args += (0, "0", 0)
        if hold is not None and hold.usd > 0.0:
            args += (hold.id, repr(float(hold.usd)), micros(hold.ttl_s))
        else:
            args += ("", "0", 0)
        releases = held.releases if held is not None else []
        args += (len(releases), *releases)
        try:
            code, wait_us, req, tok, spent, in_flight = await self._pipe(keys, args)
        except LimiterUnavailable:
            if held is not None:  # sent or not, keep it: counting a correction twice errs toward the caps
                self._restore({tenant: held})
            raise
        if code == 3:
            return Decision(False, "budget", month.end - now, spent_usd=float(spent), held_usd=float(in_flight))
        return Decision(
            code == 0, _REASONS.get(code), wait_us / 1e6, float(req), float(tok), float(spent), float(in_flight)
        )

    async def settle(
        self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float, hold: Hold | None = None
    ) -> None:
        """No I/O: the correction (and the hold's release) rides on the tenant's next reservation from this
        process, or is sent within `flush_interval_s` by a background task, whichever comes first."""
        delta = token_delta if rule.tpm else 0
        cost = max(cost_usd, 0.0)
        release = member(hold) if hold is not None and hold.usd > 0.0 else None
        if not delta and not cost and release is None:
            return
        self._hold(tenant, rule.tpm or 0, delta, cost, now, [release] if release is not None else [])
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    def _hold(self, tenant: str, tpm: int, delta: int, cost: float, now: float, releases: list[str]) -> None:
        held = self._pending.get(tenant)
        if held is None:
            self._pending[tenant] = Pending(tpm, delta, cost, now, list(releases))
        else:
            held.delta += delta
            held.cost += cost
            held.now = max(held.now, now)
            held.releases.extend(releases)

    async def _flush_soon(self) -> None:
        while self._pending:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self.flush()
            except LimiterUnavailable:
                pass  # kept; sent at the next try or with the tenant's next reservation
            except Exception:
                log.exception("limits: sending held settlements failed")

    async def flush(self) -> None:
        """Send every held correction now (one pipelined round trip). When Redis cannot be reached they
        are kept and `LimiterUnavailable` is raised; one that Redis refuses (a key of the wrong type) is
        dropped with a warning, since sending it again would fail again."""
        batch, self._pending = self._pending, {}
        if not batch:
            return
        calls: list[tuple[str, tuple[str, ...], tuple[Any, ...]]] = []
        for tenant, held in batch.items():
            _, tok_key, usd_key, holds_key, held_key = self.keys(tenant, held.now)
            args = (micros(held.now), held.tpm, held.delta, repr(held.cost), self._expiry(), len(held.releases))
            calls.append((tenant, (tok_key, usd_key, holds_key, held_key), (*args, *held.releases)))
        pipe = self.client.pipeline(transaction=False)
        for _, keys, args in calls:
            pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
        try:
            results = await self._run(pipe.execute(raise_on_error=False))
        except BaseException:  # unavailable, or cancelled at shutdown: keep them all for the next try
            self._restore(batch)
            raise
        unsent: dict[str, Pending] = {}
        for (tenant, keys, args), result in zip(calls, results, strict=True):
            if isinstance(result, NoScriptError):  # the server lost its scripts: EVAL, which reloads it
                try:
                    result = await self._settle(self.client, keys, args)
                except ResponseError as exc:
                    result = exc
                except (TimeoutError, RedisError, OSError):
                    unsent[tenant] = batch[tenant]
            if isinstance(result, Exception):
                log.warning("limits: Redis refused a settlement of tenant %s (%s); dropped", tenant, result)
        if unsent:
            self._restore(unsent)
            raise LimiterUnavailable(f"{len(unsent)} settlement(s) could not be sent")

    def _restore(self, batch: dict[str, Pending]) -> None:
        for tenant, held in batch.items():
            self._hold(tenant, held.tpm, held.delta, held.cost, held.now, held.releases)

    async def spent(self, tenant: str, now: float) -> float:
        await self.flush()
        key = self.keys(tenant, now)[2]
        value = await self._run(self.client.get(key))
        return float(value) if value is not None else 0.0

    async def held(self, tenant: str, now: float) -> float:
        """USD reserved by requests in flight, as Redis holds it (holds lapse at the next reservation)."""
        await self.flush()
        value = await self._run(self.client.get(self.keys(tenant, now)[4]))
        return float(value) if value is not None else 0.0

    async def seed(self, tenant: str, usd: float, now: float) -> bool:
        await self.flush()  # a charge still held here makes the counter non-empty
        key = self.keys(tenant, now)[2]
        return bool(await self._run(self.client.set(key, repr(float(usd)), nx=True, exat=self._expiry())))

    async def aclose(self) -> None:
        """Send what is pending (best effort), then close the connections."""
        await self._pipe.aclose()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, LimiterUnavailable):
                await self._flusher
        with contextlib.suppress(LimiterUnavailable):
            await self.flush()
        await self.client.aclose()
        await self._pool.disconnect()
