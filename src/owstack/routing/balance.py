"""How a layer spreads requests over its replicas, when it is not the default (least outstanding).

A policy chooses among the replicas that may take a request now (breaker admits, healthy ones first;
`Router.pick` filters them) and never returns None. Policies are built once per layer from the config:

    least-outstanding   the default, inline in `Router.pick`: fewest requests in flight (all instances')
    round-robin         each replica in turn (the baseline of the prefix-routing benchmark)
    prefix              the replica that served the longest matching prompt prefix, bounded by load
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from owstack.routing.prefix import PrefixIndex, PrefixPolicy, Recorded
from owstack.types import ChatRequest

if TYPE_CHECKING:
    from owstack.config.load import Config
    from owstack.routing.slot import Slot


class Policy(Protocol):
    def choose(self, slots: Sequence[Slot], request: ChatRequest | None) -> Slot: ...


class RoundRobin:
    def __init__(self) -> None:
        self._turn = 0

    def choose(self, slots: Sequence[Slot], request: ChatRequest | None) -> Slot:
        slot = slots[self._turn % len(slots)]
        self._turn += 1
        return slot


def build_policies(
    config: Config, index: PrefixIndex | None = None, on_record: Recorded | None = None
) -> dict[str, Policy]:
    """The layers whose `routing:` is not least-outstanding, and their policy objects. The prefix layers
    share one index (a replica may serve several layers)."""
    section = config.file.routing.prefix
    policies: dict[str, Policy] = {}
    for layer, spec in config.file.layers.items():
        if spec.routing == "round-robin":
            policies[layer] = RoundRobin()
        elif spec.routing == "prefix":
            if index is None:
                index = PrefixIndex(max_entries=section.max_entries, ttl_s=section.ttl_s)
            policies[layer] = PrefixPolicy(layer, section, index, on_record)
    return policies


def prefix_policies(policies: Mapping[str, Policy]) -> dict[str, PrefixPolicy]:
    return {layer: p for layer, p in policies.items() if isinstance(p, PrefixPolicy)}
