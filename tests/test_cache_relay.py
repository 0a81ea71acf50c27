"""perf.cache.relay on its own, without Redis: what another bus's invalidation and a bus's
state do to L1. Through Redis it is tested where MultiLevelCache uses it (test_cache_coherence,
test_cache_guard, test_cache_crossprocess)."""

from __future__ import annotations

import pytest

from perf.cache.coherence import L1Coherence
from perf.cache.guard import Missed, RedisGuard
from perf.cache.lru import LRUCache
from perf.cache.relay import InvalidationRelay
from perf.cache.stats import CacheStats


async def _nothing_missed(missed: Missed) -> None:
    return None


def _relay() -> InvalidationRelay:
    stats = CacheStats()
    guard = RedisGuard("relay-test", stats=stats, replay=_nothing_missed)
    l1 = LRUCache(100)
    l1.set("a", 1, 60, tags=["product:1"])
    l1.set("b", 2, 60, tags=["product:2"])
    return InvalidationRelay(l1, L1Coherence(), stats=stats, guard=guard)


async def test_a_received_invalidation_drops_its_tags_from_l1_and_refuses_older_fills() -> None:
    relay = _relay()
    assert relay.l1 is not None
    start = relay.coherence.epoch
    assert relay.receive(["product:1"]) is None  # no Redis to invalidate too
    assert "a" not in relay.l1 and "b" in relay.l1
    assert not relay.coherence.fresh_since(start, ["product:1"])  # a load begun before cannot fill L1
    assert relay.coherence.fresh_since(start, ["product:2"])
    assert relay.stats.counts["invalidations_received"] == 1


async def test_losing_the_last_bus_clears_l1_and_a_bus_back_after_a_gap_clears_it_again() -> None:
    relay = _relay()
    assert relay.l1 is not None
    relay.bus_state("postgres", True)
    assert relay.coherence.hearing and len(relay.l1) == 2  # a first connection missed nothing
    relay.bus_state("postgres", False)
    assert not relay.coherence.hearing and len(relay.l1) == 0
    relay.l1.set("c", 3, 60)
    relay.bus_state("postgres", True)
    assert relay.coherence.hearing and len(relay.l1) == 0  # what was sent meanwhile was lost


def test_redis_url_without_the_redis_level_is_refused() -> None:
    stats = CacheStats()
    guard = RedisGuard("relay-test", stats=stats, replay=_nothing_missed)
    with pytest.raises(ValueError, match="redis_url=.* go together"):
        InvalidationRelay(None, L1Coherence(), stats=stats, guard=guard, redis_url="redis://127.0.0.1:1/0")
