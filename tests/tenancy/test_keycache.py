"""The key cache: TTLs, bounds, the revision gate, and the generation guard against stale loads."""

from __future__ import annotations

from owstack.tenancy.keycache import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kwargs: float) -> KeyCache[str]:
    return KeyCache(clock=clock, **kwargs)  # type: ignore[arg-type]


def test_positive_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = make(clock, ttl_s=60.0)
    assert cache.get("a") is None
    cache.put("a", "row-a", generation=cache.generation)
    hit = cache.get("a")
    assert hit is not None and hit.value == "row-a"
    clock.now += 59.9
    assert cache.get("a") is not None
    clock.now += 0.2
    assert cache.get("a") is None


def test_negative_entries_have_their_own_ttl() -> None:
    clock = Clock()
    cache = make(clock, negative_ttl_s=5.0)
    cache.put("ghost", None, generation=cache.generation)
    hit = cache.get("ghost")
    assert hit is not None and hit.value is None
    clock.now += 5.1
    assert cache.get("ghost") is None


def test_negative_flood_does_not_evict_positive_entries() -> None:
    clock = Clock()
    cache: KeyCache[str] = KeyCache(clock=clock, max_entries=10, max_negative=8)
    cache.put("real", "row", generation=cache.generation)
    for i in range(1000):
        cache.put(f"ghost{i}", None, generation=cache.generation)
    assert len(cache) == 1 + 8
    hit = cache.get("real")
    assert hit is not None and hit.value == "row"
    assert cache.get("ghost0") is None and cache.get("ghost999") is not None


def test_positive_entries_are_bounded_lru() -> None:
    clock = Clock()
    cache: KeyCache[str] = KeyCache(clock=clock, max_entries=3)
    for name in "abcd":
        cache.put(name, name, generation=cache.generation)
    assert cache.get("a") is None and cache.get("d") is not None


def test_revision_check_is_claimed_once_per_interval() -> None:
    clock = Clock()
    cache = make(clock, revision_check_s=1.0)
    assert cache.claim_revision_check() is True
    assert [cache.claim_revision_check() for _ in range(100)] == [False] * 100
    clock.now += 1.0
    assert cache.claim_revision_check() is True


def test_changed_revision_drops_everything() -> None:
    clock = Clock()
    cache = make(clock)
    assert cache.observe_revision(3) is False  # the first observation
    cache.put("a", "row", generation=cache.generation)
    cache.put("b", None, generation=cache.generation)
    assert cache.observe_revision(3) is False and len(cache) == 2
    assert cache.observe_revision(4) is True
    assert len(cache) == 0 and cache.get("a") is None


def test_a_load_that_raced_with_a_drop_is_not_cached() -> None:
    clock = Clock()
    cache = make(clock)
    generation = cache.generation  # a load starts
    cache.clear()  # a revocation lands meanwhile
    cache.put("a", "stale row", generation=generation)
    assert cache.get("a") is None
