"""The routing package's own config: the balancing policy of a layer, prefix-cache-aware routing, and what
gateway instances share through Redis.

    layers:
      coding: {backends: [vllm-1, vllm-2, vllm-3], routing: prefix}   # least-outstanding | round-robin | prefix
    routing:
      prefix:
        chunk_bytes: 256        # the rendered prompt is hashed in chunks of this many bytes (about 64 tokens)
        max_imbalance: 8        # the replica holding the prefix is skipped when it has this many more requests
                                # in flight than the least busy one (then: least outstanding)
        ttl_s: 600              # a remembered prefix is forgotten after this long (the replica evicted it)
        max_entries: 200000     # prefix hashes remembered per process (least recently used out first)
      shared:                   # with `redis:` set: what gateway instances tell each other
        enabled: true
        sync_interval_ms: 250   # load and prefix decisions are sent at least this often; breaker and health
                                # changes at once
        stale_after_s: 3        # the load an instance reported is forgotten when it has been silent this long
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from owstack.config.base import Section

#: how a layer spreads requests over its replicas
Policy = Literal["least-outstanding", "round-robin", "prefix"]
POLICIES: tuple[str, ...] = ("least-outstanding", "round-robin", "prefix")


class PrefixSection(Section):
    #: the rendered prompt (tools, then every message) is hashed in chunks of this many bytes; each chunk's
    #: hash covers everything before it, so a match of n chunks means the first n x chunk_bytes are the same
    chunk_bytes: Annotated[int, Field(ge=16, le=65_536)] = 256
    #: the replica that holds the longest matching prefix is used unless it has more than this many
    #: requests in flight beyond the least busy candidate; then the least busy one is
    max_imbalance: Annotated[int, Field(ge=0, le=100_000)] = 8
    #: a prefix not seen for this long is forgotten (an engine's cache evicts what it has not used)
    ttl_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    #: prefix hashes remembered per process; the least recently used go first
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 200_000


class SharedSection(Section):
    #: with `redis:`, share circuit-breaker and health changes, load and prefix decisions between instances
    enabled: bool = True
    #: longest an instance holds load reports and prefix decisions before sending them (breaker and health
    #: changes are sent at once)
    sync_interval_ms: Annotated[int, Field(ge=10, le=60_000)] = 250
    #: an instance whose reports stopped this long ago no longer counts toward a replica's load
    stale_after_s: Annotated[float, Field(gt=0, le=3_600)] = 3.0
