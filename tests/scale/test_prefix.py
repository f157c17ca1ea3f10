"""Prefix-cache-aware routing: hashing the rendered prompt in chunks, the index, and the policy's choice
(longest remembered prefix, bounded by load), through `Router.pick` as the caller uses it."""

from __future__ import annotations

from typing import Any

import pytest

from owstack.config.load import from_dict
from owstack.routing.balance import RoundRobin, build_policies
from owstack.routing.breaker import CircuitBreaker
from owstack.routing.config import PrefixSection
from owstack.routing.health import HealthChecker
from owstack.routing.prefix import PrefixIndex, PrefixPolicy, prefix_hashes, render
from owstack.routing.router import Router
from owstack.routing.slot import Slot
from owstack.types import ChatRequest

SYSTEM = {"role": "system", "content": "You are a coding agent. " * 40}  # about 1 KB shared by every agent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Named:
    def __init__(self, name: str) -> None:
        self.name = name
        self.engine = "vllm"
        self.model = "m"

    async def health(self, timeout: float = 2.0) -> bool:
        return True


def slots(*names: str) -> list[Slot]:
    return [Slot(n, Named(n), CircuitBreaker(n, 3, 30)) for n in names]  # type: ignore[arg-type]


def chat(*messages: dict[str, Any], tools: list[Any] | None = None) -> ChatRequest:
    return ChatRequest(model="coding", messages=list(messages), params={"tools": tools} if tools else {})


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def policy(clock: Clock | None = None, **section: Any) -> PrefixPolicy:
    s = PrefixSection(**section)
    return PrefixPolicy("coding", s, PrefixIndex(max_entries=s.max_entries, ttl_s=s.ttl_s, clock=clock or Clock()))


# hashing ------------------------------------------------------------------------------------------------


def test_each_hash_covers_the_whole_prefix_before_it() -> None:
    a = prefix_hashes(render(chat(SYSTEM, user("first question " * 30))), 64)
    b = prefix_hashes(render(chat(SYSTEM, user("other question " * 30))), 64)
    shared = len(render(chat(SYSTEM))) // 64  # the chunks that hold only the system prompt
    assert a[:shared] == b[:shared]
    assert all(x != y for x, y in zip(a[shared + 1 :], b[shared + 1 :], strict=False)), "diverged: never equal again"


def test_a_later_turn_extends_the_earlier_one_and_the_rendering_is_canonical() -> None:
    turn1 = chat(SYSTEM, user("write a parser"))
    turn2 = chat(SYSTEM, user("write a parser"), assistant("here it is " * 20), user("add tests"))
    h1, h2 = prefix_hashes(render(turn1), 32), prefix_hashes(render(turn2), 32)
    full = len(render(turn1)) // 32
    assert h2[:full] == h1[:full]
    reordered = chat({"content": SYSTEM["content"], "role": "system"}, {"content": "write a parser", "role": "user"})
    assert render(reordered) == render(turn1), "field order does not matter"


def test_tools_come_first_and_change_every_hash() -> None:
    tool = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]
    plain = prefix_hashes(render(chat(SYSTEM, user("hi"))), 64)
    with_tools = prefix_hashes(render(chat(SYSTEM, user("hi"), tools=tool)), 64)
    assert not set(plain) & set(with_tools)


# the index ----------------------------------------------------------------------------------------------


def test_the_index_finds_the_longest_acceptable_prefix_and_forgets_after_its_ttl() -> None:
    clock = Clock()
    index = PrefixIndex(max_entries=100, ttl_s=60, clock=clock)
    assert index.record([1, 2, 3], "a") == [1, 2, 3]
    assert index.record([1, 2, 3, 4, 5], "b") == [1, 2, 3, 4, 5]
    assert index.record([1, 2], "b") == []  # nothing changed hands
    assert index.longest([1, 2, 3, 4, 5, 6], lambda n: True) == ("b", 5)
    assert index.longest([1, 2, 3, 4, 5, 6], lambda n: n != "b") == (None, 0)
    index.learn([1, 2, 3], "a")
    assert index.longest([1, 2, 3, 4, 5, 6], lambda n: n == "a") == ("a", 3)
    clock.now += 61
    assert index.longest([1, 2, 3, 4, 5], lambda n: True) == (None, 0)
    assert index.owner(1) is None


def test_the_index_evicts_the_least_recently_used() -> None:
    index = PrefixIndex(max_entries=3, ttl_s=60, clock=Clock())
    index.record([1, 2, 3], "a")
    index.record([1], "a")  # 1 used again: 2 is now the oldest
    index.record([4], "b")
    assert len(index) == 3 and index.owner(2) is None and index.owner(1) == "a" and index.owner(4) == "b"


# the policy ---------------------------------------------------------------------------------------------


def test_an_agents_turns_stay_on_the_replica_that_served_the_first() -> None:
    p = policy()
    replicas = slots("r1", "r2", "r3")
    chosen: dict[int, set[str]] = {}
    for agent in range(6):
        history = [SYSTEM, user(f"agent {agent}: task description " * 10)]
        for turn in range(5):
            slot = p.choose(replicas, chat(*history))
            chosen.setdefault(agent, set()).add(slot.name)
            slot.outstanding += 1  # agents run concurrently: each holds its replica while it works
            history += [assistant(f"step {turn} " * 15), user(f"result of step {turn} " * 5)]
        for s in replicas:
            s.outstanding = 0
    assert all(len(names) == 1 for names in chosen.values()), chosen
    # only the very first request found nothing: the others' first turns share the system prompt's chunks
    assert p.outcomes == {"hit": 29, "miss": 1, "overloaded": 0}
    assert p.matched_bytes > 29 * len(render(chat(SYSTEM))) - 29 * 256


def test_a_busy_prefix_replica_is_skipped_beyond_the_imbalance_bound() -> None:
    p = policy(max_imbalance=2)
    a, b = slots("a", "b")
    first = p.choose([a, b], chat(SYSTEM, user("long task")))
    other = b if first is a else a
    first.outstanding = 2  # within the bound: still the prefix's replica
    assert p.choose([a, b], chat(SYSTEM, user("long task"), assistant("ok"), user("go on"))) is first
    first.outstanding = 3  # beyond it: the least busy one, and the prefix now points there
    assert p.choose([a, b], chat(SYSTEM, user("long task"), assistant("ok"), user("go on"))) is other
    assert p.outcomes["overloaded"] == 1
    first.outstanding = 0
    assert p.choose([a, b], chat(SYSTEM, user("long task"), assistant("ok"), user("go on"), user("more"))) is other


def test_other_instances_load_counts_toward_the_bound() -> None:
    p = policy(max_imbalance=1)
    a, b = slots("a", "b")
    first = p.choose([a, b], chat(SYSTEM, user("task")))
    first.remote = 5  # another gateway keeps it busy
    other = b if first is a else a
    assert p.choose([a, b], chat(SYSTEM, user("task"), user("next"))) is other


def test_new_conversations_spread_when_loads_are_equal_and_instances_agree() -> None:
    names = ("r1", "r2", "r3", "r4")
    one, two = policy(), policy()  # two gateway processes that share nothing
    picks = []
    for n in range(40):
        request = chat(user(f"conversation {n} " * 20))
        x, y = one.choose(slots(*names), request), two.choose(slots(*names), request)
        assert x.name == y.name
        picks.append(x.name)
    assert set(picks) == set(names), "rendezvous hashing spreads distinct prompts over every replica"


# through the router --------------------------------------------------------------------------------------

CONFIG: dict[str, Any] = {
    "backends": {n: {"engine": "vllm", "url": f"http://{n}:8000/v1", "model": "m"} for n in ("v1", "v2", "v3", "e")},
    "layers": {
        "coding": {"backends": ["v1", "v2", "v3"], "routing": "prefix"},
        "multimodal": {"backends": ["v1", "v2"], "routing": "round-robin"},
        "edge": {"backends": ["e"]},
    },
}


def make_router() -> tuple[Router, dict[str, Slot]]:
    cfg = from_dict(CONFIG)
    table = {s.name: s for s in slots(*cfg.file.backends)}
    health = HealthChecker([s.backend for s in table.values()], interval_s=1, timeout_s=1, unhealthy_after=1)  # type: ignore[misc]
    return Router(cfg, table, health, build_policies(cfg)), table


def test_the_router_uses_each_layers_policy_and_skips_open_breakers() -> None:
    router, _table = make_router()
    assert isinstance(router.policies["multimodal"], RoundRobin) and "edge" not in router.policies
    request = chat(SYSTEM, user("refactor this module"))
    first = router.pick(["v1", "v2", "v3"], set(), request, "coding")
    assert first is not None
    assert (
        router.pick(["v1", "v2", "v3"], set(), chat(SYSTEM, user("refactor this module"), user("x")), "coding") is first
    )
    for _ in range(3):
        first.breaker.failure()
    again = router.pick(["v1", "v2", "v3"], set(), request, "coding")
    assert again is not None and again is not first, "an open breaker is never chosen"
    assert router.pick(["v1", "v2", "v3"], {"v1", "v2", "v3"}, request, "coding") is None
    turns = [router.pick(["v1", "v2"], set(), request, "multimodal") for _ in range(2)]
    assert {s.name for s in turns if s} == {"v1", "v2"} - {first.name}, "round-robin over what is open"
    first.breaker.reset()
    turns = [router.pick(["v1", "v2"], set(), request, "multimodal") for _ in range(4)]
    names = [s.name for s in turns if s]
    assert names[0] != names[1] and names[:2] == names[2:]


def test_an_unknown_policy_is_a_config_error_naming_the_field() -> None:
    from owstack.errors import ConfigError

    bad = {**CONFIG, "layers": {**CONFIG["layers"], "coding": {"backends": ["v1"], "routing": "random"}}}
    with pytest.raises(ConfigError, match=r"layers\.coding\.routing"):
        from_dict(bad)
