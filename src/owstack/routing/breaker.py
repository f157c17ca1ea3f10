"""A circuit breaker per backend: closed -> open after N consecutive failures -> half-open probe.

closed     every request goes through; a failure counts, a success resets the count
open       nothing goes through until `reset_s` has passed since it opened
half_open  exactly one probe request goes through: success closes, failure re-opens

`trip` and `reset` apply what another gateway instance saw (routing/shared.py): a breaker that opened there
opens here without this instance spending its own failures on the backend, and one that closed there
(its probe succeeded) closes here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    __slots__ = (
        "_clock",
        "_on_change",
        "failures",
        "name",
        "opened_at",
        "probing",
        "reset_s",
        "state",
        "threshold",
    )

    def __init__(
        self,
        name: str,
        threshold: int,
        reset_s: float,
        *,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.reset_s = reset_s
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self._on_change = on_change
        self._clock = clock

    def available(self) -> bool:
        """Could a request go through now? (No side effects: use `acquire` to take the probe slot.)"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return self._clock() - self.opened_at >= self.reset_s
        return not self.probing

    def acquire(self) -> bool:
        """Take permission for one request; in half-open state only one at a time gets it."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self._clock() - self.opened_at < self.reset_s:
                return False
            self._set(HALF_OPEN)
        if self.probing:
            return False
        self.probing = True
        return True

    def success(self) -> None:
        self.failures = 0
        self.probing = False
        if self.state != CLOSED:
            self._set(CLOSED)

    def failure(self) -> None:
        self.probing = False
        if self.state == HALF_OPEN:
            self.opened_at = self._clock()
            self._set(OPEN)
            return
        self.failures += 1
        if self.state == CLOSED and self.failures >= self.threshold:
            self.opened_at = self._clock()
            self._set(OPEN)

    def trip(self) -> None:
        """Another instance's breaker opened: open now, unless already open or probing."""
        if self.state == CLOSED:
            self.failures = 0
            self.opened_at = self._clock()
            self._set(OPEN)

    def reset(self) -> None:
        """Another instance's probe succeeded: the backend answers again."""
        if self.state != CLOSED:
            self.failures = 0
            self._set(CLOSED)

    def release(self) -> None:
        """The request ended without a verdict (client went away): free the probe slot."""
        self.probing = False

    def _set(self, state: str) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(self.name, state)
