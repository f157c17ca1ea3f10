"""A backend and its live routing state, the one thing every part of routing hands around.

It stands alone so that the balancing policies (balance.py, prefix.py), the shared-state exchange
(shared.py, collector.py) and the router that owns the slots can all name it without importing each
other: the router imports the policies, so the policies cannot import the router.
"""

from __future__ import annotations

from dataclasses import dataclass

from owstack.backends.base import Backend
from owstack.routing.breaker import CircuitBreaker


@dataclass(slots=True)
class Slot:
    """A backend and its live routing state."""

    name: str
    backend: Backend
    breaker: CircuitBreaker
    outstanding: int = 0
    #: requests in flight to it from the other gateway instances, as they last reported (routing/shared.py)
    remote: int = 0

    @property
    def load(self) -> int:
        return self.outstanding + self.remote
