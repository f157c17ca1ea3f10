"""The shared limiter, on Redis: every gateway process and host checks and takes from the same keys.
(Imported only when `redis:` is set.)

Per tenant, under the configured prefix (`owstack:` by default; `{tenant}` is a Redis Cluster hash tag,
so one tenant's keys live in one slot and one script may touch them all):

    <prefix>{<tenant>}:rpm              hash {l: level, t: last update in µs}; expires when it has drained
    <prefix>{<tenant>}:tpm              the same for tokens
    <prefix>{<tenant>}:usd:<YYYY-MM>    month-to-date spend (INCRBYFLOAT); expires 7 days after the month

`reserve` is one EVALSHA (one round trip): the budget check and both buckets' check-and-take run in one
Lua script, which Redis executes atomically, so concurrent requests from any number of processes never
take more than the caps allow. `settle` is one more. A script unknown to the server (NOSCRIPT, after a
restart or SCRIPT FLUSH) is sent once with EVAL, which also caches it again.

Times come from the gateway's clock (passed in, integer µs): keep the hosts' clocks in sync (NTP); a skew
of d seconds shifts a cap by about d x rate units, nothing at per-minute caps with millisecond skew.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from owstack.tenancy.limits.bucket import Decision, LimiterUnavailable, Month, Rule, micros, month_of

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

#: KEYS: request bucket, token bucket, month spend. ARGV: now µs, rpm (0: none), tpm (0: none), tokens,
#: budget ('': none). Returns {code (0 ok, 1 requests, 2 tokens, 3 budget), wait µs, request level,
#: token level, spend}.
RESERVE = (
    _COMMON
    + """
local now = tonumber(ARGV[1])
local spent = '0'
if ARGV[5] ~= '' then
  spent = redis.call('GET', KEYS[3]) or '0'
  if tonumber(spent) >= tonumber(ARGV[5]) then return {3, 0, '0', '0', spent} end
end
local rpm, tpm, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
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
end
return {code, math.ceil(wait), string.format('%.17g', rl), string.format('%.17g', tl), spent}
"""
)

#: KEYS: token bucket, month spend. ARGV: now µs, tpm (0: none), token delta, cost USD, spend expiry (epoch s).
SETTLE = (
    _COMMON
    + """
local now, tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tpm > 0 and delta ~= 0 then
  local level, last = load(KEYS[1], tpm, now)
  level = level + delta
  if level > 0 then store(KEYS[1], level, last, tpm) else redis.call('DEL', KEYS[1]) end
end
if tonumber(ARGV[4]) > 0 then
  redis.call('INCRBYFLOAT', KEYS[2], ARGV[4])
  redis.call('EXPIREAT', KEYS[2], ARGV[5])
end
return 1
"""
)

_REASONS = {1: "requests", 2: "tokens", 3: "budget"}


class Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) when the server does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: Any, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


class RedisLimiter:
    def __init__(
        self, url: str, *, prefix: str = "owstack:", timeout_s: float = 0.25, max_connections: int = 64
    ) -> None:
        """No I/O here: connections are opened by the first command (on the event loop that runs it)."""
        self.prefix = prefix
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
        self._settle = Script(SETTLE)
        self._keys: dict[str, tuple[str, str, str]] = {}
        self._month: Month | None = None

    def keys(self, tenant: str, now: float) -> tuple[str, str, str]:
        """(request bucket, token bucket, this month's spend) for `tenant`."""
        month = month_of(now, self._month)
        if month is not self._month:
            self._month, self._keys = month, {}
        keys = self._keys.get(tenant)
        if keys is None:
            base = f"{self.prefix}{{{tenant}}}"
            keys = self._keys[tenant] = (f"{base}:rpm", f"{base}:tpm", f"{base}:usd:{month.key}")
        return keys

    async def _run(self, call: Awaitable[Any]) -> Any:
        """Await one Redis call; any failure to get an answer is `LimiterUnavailable`."""
        try:
            return await call
        except (TimeoutError, RedisError, OSError) as exc:
            raise LimiterUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def reserve(self, tenant: str, rule: Rule, tokens: int, now: float) -> Decision:
        budget = "" if rule.budget_usd is None else repr(float(rule.budget_usd))
        args = (micros(now), rule.rpm or 0, rule.tpm or 0, tokens, budget)
        code, wait_us, req, tok, spent = await self._run(self._reserve(self.client, self.keys(tenant, now), args))
        if code == 3:
            assert self._month is not None
            return Decision(False, "budget", self._month.end - now, spent_usd=float(spent))
        return Decision(code == 0, _REASONS.get(code), wait_us / 1e6, float(req), float(tok), float(spent))

    async def settle(self, tenant: str, rule: Rule, token_delta: int, cost_usd: float, now: float) -> None:
        if not (token_delta and rule.tpm) and cost_usd <= 0:
            return
        _, tok_key, usd_key = self.keys(tenant, now)
        assert self._month is not None
        expire = int(self._month.end) + SPEND_KEEP_S
        args = (micros(now), rule.tpm or 0, token_delta, repr(max(cost_usd, 0.0)), expire)
        await self._run(self._settle(self.client, (tok_key, usd_key), args))

    async def spent(self, tenant: str, now: float) -> float:
        key = self.keys(tenant, now)[2]
        value = await self._run(self.client.get(key))
        return float(value) if value is not None else 0.0

    async def seed(self, tenant: str, usd: float, now: float) -> bool:
        key = self.keys(tenant, now)[2]
        assert self._month is not None
        expire = int(self._month.end) + SPEND_KEEP_S
        return bool(await self._run(self.client.set(key, repr(float(usd)), nx=True, exat=expire)))

    async def aclose(self) -> None:
        await self.client.aclose()
        await self._pool.disconnect()
