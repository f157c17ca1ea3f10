"""A store's health as its callers see it: up or down, for how long, with a probe backoff and quiet logs.

    health = StoreHealth("keys", "PostgreSQL at db:5432")
    if health.should_try():          # up, or down and the next probe is due (backoff 0.5 s .. retry_max_s)
        try: ...; health.succeeded()
        except OutageError as exc: health.failed(exc)   # one warning when the outage starts, then a summary
                                                        # at most every `warn_every_s`; one line when it ends

Why: during an outage every request used to try the store and log why it could not (3,248 warnings in
40 s, and each request waited for its own timeout). With a shared health, requests do not wait for a
store that just failed; one caller probes it per backoff interval; the log says when it went down, how
often it failed meanwhile, and when it came back. Every `StoreHealth` is listed by `tracked()` for
`/metrics` (`owstack_store_up{store}`, `owstack_store_errors_total{store}`, `owstack_store_down_seconds{store}`).

Thread-safe enough for its use: the fields are plain numbers, written by whoever called last.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable

log = logging.getLogger("owstack.storage")

_TRACKED: weakref.WeakSet[StoreHealth] = weakref.WeakSet()


def tracked() -> list[StoreHealth]:
    """Every live `StoreHealth` of this process, by name (for /metrics)."""
    return sorted(_TRACKED, key=lambda h: h.name)


class StoreHealth:
    def __init__(
        self,
        name: str,
        where: str,
        *,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        warn_every_s: float = 60.0,
        logs: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`name`: the store's role (keys, ledger, limits), the `store` label; `where`: a description without
        credentials for the logs; `logs=False` for a caller that says it its own way."""
        self.name = name
        self.logs = logs
        self.where = where
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.warn_every_s = warn_every_s
        self.clock = clock
        self.up = True
        self.errors = 0
        self.down_since: float | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._failed_since_warning = 0
        self._warned_at = 0.0
        _TRACKED.add(self)

    def should_try(self) -> bool:
        """True when the store is up, or when a probe is due (then the caller is that probe: the next one is
        pushed back by the current backoff, so concurrent callers do not all try)."""
        if self.up:
            return True
        now = self.clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._backoff
        return True

    def failed(self, error: BaseException | str) -> None:
        """A call failed for the store's sake (unreachable, timed out): count it, back off, log quietly."""
        now = self.clock()
        self.errors += 1
        self._backoff = min(self.retry_max_s, max(self.retry_min_s, self._backoff * 2))
        self._retry_at = now + self._backoff
        reason = error if isinstance(error, str) else _reason(error)
        if self.up:
            self.up = False
            self.down_since = now
            self._warned_at, self._failed_since_warning = now, 0
            if self.logs:
                log.warning("%s store (%s) unreachable: %s", self.name, self.where, reason)
            return
        self._failed_since_warning += 1
        if self.logs and now - self._warned_at >= self.warn_every_s:
            since = now - (self.down_since or now)
            log.warning(
                "%s store (%s) still unreachable after %.0f s (%d more failures; last: %s)",
                self.name,
                self.where,
                since,
                self._failed_since_warning,
                reason,
            )
            self._warned_at, self._failed_since_warning = now, 0

    def succeeded(self) -> None:
        if self.up:
            return
        since = self.clock() - (self.down_since or self.clock())
        self.up, self.down_since, self._backoff, self._retry_at = True, None, 0.0, 0.0
        if self.logs:
            log.warning("%s store (%s) reachable again after %.1f s", self.name, self.where, since)

    @property
    def down_s(self) -> float:
        """Seconds since the store went down (0 while up)."""
        return 0.0 if self.down_since is None else self.clock() - self.down_since


def _reason(error: BaseException) -> str:
    from owstack.storage.db import error_reason

    return f"{type(error).__name__}: {error_reason(error)}"
