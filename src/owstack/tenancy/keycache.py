"""The in-process cache in front of the key table, so that the hot path does not query per request.

- Positive entries: a key's row (digest, tenant, layers, expiry, revocation), kept `ttl_s` (60 s). The
  presented secret is checked against the cached digest on every request, so a wrong secret for a known
  key id never reaches the database.
- Negative entries: key ids that have no row, kept `negative_ttl_s` (30 s) in a separate, smaller LRU, so
  that a burst of requests with an unknown key costs one query and cannot evict the positive entries.
- Revision gate: every create and revoke bumps a counter row in the database. At most once per
  `revision_check_s` (1 s) one caller reads it; when it changed, the whole cache is dropped. A revoked
  key therefore stops working everywhere within about `revision_check_s`.
- Outage grace: a positive entry past its `ttl_s` is kept `grace_s` longer (`keys.outage_grace_s`, an
  hour), for `stale()`: while the database cannot be read, the key store answers from it; keys never
  seen (or seen longer ago) fail closed (503). A revision read that succeeds again drops the whole cache
  if anything changed meanwhile, so a revocation is honoured as soon as the store answers.

Thread-safe (one lock): loads run in worker threads while the event loop reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Hit(Generic[T]):
    """A cache answer: `value` is None for a cached "no such key"."""

    value: T | None


#: the answer for a cached "no such key" (one object: a hit is handed out per request, not built per request)
_ABSENT: Hit[object] = Hit(None)


class KeyCache(Generic[T]):
    def __init__(
        self,
        *,
        ttl_s: float = 60.0,
        negative_ttl_s: float = 30.0,
        revision_check_s: float = 1.0,
        max_entries: int = 10_000,
        max_negative: int = 4_096,
        grace_s: float = 0.0,
        clock: Callable[[], float],
    ) -> None:
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self.negative_ttl_s = negative_ttl_s
        self.revision_check_s = revision_check_s
        self._max = max_entries
        self._max_negative = max_negative
        self._clock = clock
        self._lock = threading.Lock()
        self._positive: OrderedDict[str, tuple[float, Hit[T]]] = OrderedDict()  # (expiry, the hit handed out)
        self._negative: OrderedDict[str, float] = OrderedDict()
        self._revision: int | None = None
        self._next_check = 0.0
        #: bumped whenever the cache is dropped: a load that started before must not refill it
        self._generation = 0

    def get(self, key_id: str) -> Hit[T] | None:
        """The cached answer for `key_id`, or None when the database must be asked."""
        now = self._clock()
        with self._lock:
            entry = self._positive.get(key_id)
            if entry is not None:
                if entry[0] > now:
                    return entry[1]
                if entry[0] + self.grace_s <= now:  # past its grace too: nothing left to answer from
                    del self._positive[key_id]
            until = self._negative.get(key_id)
            if until is not None:
                if until > now:
                    return _ABSENT  # type: ignore[return-value]
                del self._negative[key_id]
        return None

    def stale(self, key_id: str) -> T | None:
        """A positive entry past its TTL but within its grace (what an outage may answer from), else None."""
        now = self._clock()
        with self._lock:
            entry = self._positive.get(key_id)
            if entry is not None and entry[0] + self.grace_s > now:
                return entry[1].value
        return None

    @property
    def generation(self) -> int:
        """Read before a load and pass to `put`: a load that raced with a drop is not cached."""
        return self._generation

    def put(self, key_id: str, value: T | None, *, generation: int) -> None:
        """Cache a loaded row (or its absence), unless the cache was dropped since the load began."""
        now = self._clock()
        with self._lock:
            if generation != self._generation:
                return
            if value is None:
                self._negative[key_id] = now + self.negative_ttl_s
                self._negative.move_to_end(key_id)
                while len(self._negative) > self._max_negative:
                    self._negative.popitem(last=False)
            else:
                self._negative.pop(key_id, None)
                self._positive[key_id] = (now + self.ttl_s, Hit(value))
                self._positive.move_to_end(key_id)
                while len(self._positive) > self._max:
                    self._positive.popitem(last=False)

    def claim_revision_check(self) -> bool:
        """True for exactly one caller per `revision_check_s`: that caller reads the revision."""
        now = self._clock()
        with self._lock:
            if now < self._next_check:
                return False
            self._next_check = now + self.revision_check_s
            return True

    def due_in(self) -> float:
        """Seconds until the next revision read is due (0: it is due now)."""
        with self._lock:
            return max(0.0, self._next_check - self._clock())

    def observe_revision(self, revision: int) -> bool:
        """Record the database's revision; drop everything when it changed. True if it changed."""
        with self._lock:
            changed = self._revision is not None and revision != self._revision
            if changed:
                self._drop()
            self._revision = revision
            return changed

    @property
    def revision(self) -> int | None:
        return self._revision

    def clear(self) -> None:
        """Drop every entry and read the revision again on the next request."""
        with self._lock:
            self._drop()
            self._next_check = 0.0

    def _drop(self) -> None:
        self._positive.clear()
        self._negative.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._positive) + len(self._negative)
