"""Prefix-cache-aware routing: send a request to the replica that already holds the longest part of its prompt.

vLLM and SGLang keep the KV cache of prompts they have served (automatic prefix caching, RadixAttention);
a request whose prompt starts with a cached prefix skips that part of the prefill, so its time to first
token falls with the cached share. An agent's turns resend the whole conversation every time, so the
replica that served turn n holds nearly all of turn n+1. Round-robin or least-outstanding spreads the turns
over replicas that each compute the conversation again (vLLM production-stack's router and llm-d's
endpoint picker route by prefix for this reason).

How (after vLLM production-stack's `prefix/hashtrie.py`, with the whole rendered prefix hashed, not just the
first message: SGLang #26263):

    rendered = tools + every message, as canonical JSON           what the engine's template turns into tokens
    hashes[i] = blake2b(rendered[: (i + 1) * chunk_bytes])        incremental: each covers all before it
    index: hash -> (replica that was sent it, when)               one dictionary, least recently used out
    choose: the longest hash whose replica is a candidate and is not busier than the least busy candidate
            by more than `max_imbalance` requests; none: the least busy candidate (ties: a hash of the
            first chunk, so instances agree on where a new conversation goes)
    record: every hash of the request -> the chosen replica

The index is per process; with `redis:` set, `routing/shared.py` sends each process's new entries to the
others (at most `sync_interval_ms` late) and a replica's load includes the other instances' requests.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import orjson

from owstack.types import ChatRequest

if TYPE_CHECKING:
    from owstack.routing.config import PrefixSection
    from owstack.routing.slot import Slot

#: (replica, hashes newly pointing to it): what the shared state sends to the other instances
Recorded = Callable[[str, list[int]], None]
OUTCOMES = ("hit", "miss", "overloaded")


def prefix_hashes(data: bytes, chunk_bytes: int) -> list[int]:
    """One 64-bit hash per chunk of a rendered prompt (`render`); hash i covers chunks 0..i."""
    digest = hashlib.blake2b(digest_size=8)
    out = []
    for start in range(0, len(data), chunk_bytes):
        digest.update(data[start : start + chunk_bytes])
        out.append(int.from_bytes(digest.copy().digest(), "little"))
    return out


def render(request: ChatRequest) -> bytes:
    """The prompt as the engine will see it, in a canonical form: the tools (templates render them into the
    system prompt, ahead of everything), then each message in order. Keys sorted, so that two clients that
    order a message's fields differently still share a prefix."""
    parts = []
    tools = request.params.get("tools")
    if tools:
        parts.append(orjson.dumps(tools, option=orjson.OPT_SORT_KEYS))
    for message in request.messages:
        parts.append(orjson.dumps(message, option=orjson.OPT_SORT_KEYS))
    return b"\n".join(parts)


class PrefixIndex:
    """hash -> (replica, last used), bounded in size and age. Plain dict order is the recency order: an
    entry used again is moved to the end, the oldest are evicted from the front."""

    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[int, tuple[str, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def longest(self, hashes: Sequence[int], acceptable: Callable[[str], bool]) -> tuple[str | None, int]:
        """(replica, chunks matched) of the longest remembered prefix whose replica is acceptable; (None, 0)."""
        oldest = self.clock() - self.ttl_s
        entries = self._entries
        for depth in range(len(hashes), 0, -1):
            entry = entries.get(hashes[depth - 1])
            if entry is not None and entry[1] > oldest and acceptable(entry[0]):
                return entry[0], depth
        return None, 0

    def owner(self, key: int) -> str | None:
        entry = self._entries.get(key)
        return None if entry is None or entry[1] <= self.clock() - self.ttl_s else entry[0]

    def record(self, hashes: Sequence[int], replica: str) -> list[int]:
        """Every hash now points to `replica`; returns those that pointed elsewhere (or nowhere) before."""
        now = self.clock()
        entries = self._entries
        changed = []
        for key in hashes:
            old = entries.pop(key, None)
            if old is None or old[0] != replica:
                changed.append(key)
            entries[key] = (replica, now)
        self._evict()
        return changed

    def learn(self, hashes: Sequence[int], replica: str) -> None:
        """Another instance sent these hashes to `replica` (just now, give or take the sync interval)."""
        now = self.clock()
        entries = self._entries
        for key in hashes:
            entries.pop(key, None)
            entries[key] = (replica, now)
        self._evict()

    def _evict(self) -> None:
        entries = self._entries
        while len(entries) > self.max_entries:
            del entries[next(iter(entries))]


class PrefixPolicy:
    """`routing: prefix` for one layer: longest remembered prefix, bounded by load."""

    def __init__(
        self, layer: str, section: PrefixSection, index: PrefixIndex, on_record: Recorded | None = None
    ) -> None:
        self.layer = layer
        self.chunk_bytes = section.chunk_bytes
        self.max_imbalance = section.max_imbalance
        self.index = index
        self.on_record = on_record
        #: hit (the prefix's replica), miss (nothing remembered), overloaded (remembered, but too busy)
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        #: prompt bytes that matched a remembered prefix on the chosen replica
        self.matched_bytes = 0

    def choose(self, slots: Sequence[Slot], request: ChatRequest | None) -> Slot:
        if request is None:
            return min(slots, key=lambda s: s.load)
        data = render(request)
        hashes = prefix_hashes(data, self.chunk_bytes)
        by_name = {slot.name: slot for slot in slots}
        least = min(slot.load for slot in slots)
        bound = least + self.max_imbalance
        name, depth = self.index.longest(hashes, lambda n: n in by_name and by_name[n].load <= bound)
        if name is not None:
            chosen = by_name[name]
            self.outcomes["hit"] += 1
            self.matched_bytes += min(depth * self.chunk_bytes, len(data))
        else:
            seen, _ = self.index.longest(hashes, lambda n: n in by_name)
            self.outcomes["overloaded" if seen is not None else "miss"] += 1
            chosen = _least_loaded(slots, hashes[0] if hashes else 0)
        changed = self.index.record(hashes, chosen.name)
        if changed and self.on_record is not None:
            self.on_record(chosen.name, changed)
        return chosen


def _least_loaded(slots: Sequence[Slot], salt: int) -> Slot:
    """The least busy slot; among equals, the one a hash of (salt, name) ranks first (rendezvous hashing), so
    that every instance sends the same new conversation to the same replica while loads are equal."""

    def rank(slot: Slot) -> tuple[int, int]:
        mixed = hashlib.blake2b(f"{salt}:{slot.name}".encode(), digest_size=8).digest()
        return slot.load, int.from_bytes(mixed, "little")

    return min(slots, key=rank)
