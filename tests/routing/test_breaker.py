"""The circuit breaker's state machine, with a controlled clock."""

from __future__ import annotations

from owstack.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 3, reset_s: float = 10.0) -> tuple[CircuitBreaker, Clock, list[tuple[str, str]]]:
    clock = Clock()
    events: list[tuple[str, str]] = []
    breaker = CircuitBreaker("b", threshold, reset_s, on_change=lambda n, s: events.append((n, s)), clock=clock)
    return breaker, clock, events


def test_opens_after_n_consecutive_failures_only() -> None:
    breaker, _, events = make(threshold=3)
    breaker.failure()
    breaker.failure()
    breaker.success()  # resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.state == CLOSED and breaker.acquire()
    breaker.failure()
    assert breaker.state == OPEN
    assert events == [("b", OPEN)]
    assert not breaker.available() and not breaker.acquire()


def test_half_open_admits_exactly_one_probe_then_closes_on_success() -> None:
    breaker, clock, events = make(threshold=1, reset_s=10)
    breaker.failure()
    clock.now += 9.9
    assert not breaker.acquire()
    clock.now += 0.2
    assert breaker.available()
    assert breaker.acquire()
    assert breaker.state == HALF_OPEN
    assert not breaker.acquire(), "a second request must wait for the probe's verdict"
    breaker.success()
    assert breaker.state == CLOSED and breaker.acquire() and breaker.acquire()
    assert [s for _, s in events] == [OPEN, HALF_OPEN, CLOSED]


def test_failed_probe_reopens_for_a_full_period() -> None:
    breaker, clock, _ = make(threshold=1, reset_s=5)
    breaker.failure()
    clock.now += 5
    assert breaker.acquire()
    breaker.failure()
    assert breaker.state == OPEN
    clock.now += 4.9
    assert not breaker.acquire()
    clock.now += 0.2
    assert breaker.acquire()


def test_abandoned_probe_frees_the_slot() -> None:
    breaker, clock, _ = make(threshold=1, reset_s=1)
    breaker.failure()
    clock.now += 1
    assert breaker.acquire()
    breaker.release()
    assert breaker.state == HALF_OPEN and breaker.acquire()
