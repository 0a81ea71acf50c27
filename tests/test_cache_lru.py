"""perf.cache.lru: the bound, LRU order and per-entry TTL (with a fake clock)."""

from __future__ import annotations

import pytest

from perf.cache.lru import LRUCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bound_evicts_least_recently_used() -> None:
    lru = LRUCache(3)
    for key in "abc":
        lru.set(key, key.upper(), ttl=60)
    assert lru.get("a") == "A"  # a is now most recently used
    lru.set("d", "D", ttl=60)
    assert len(lru) == 3
    assert "b" not in lru and lru.get("a") == "A" and lru.get("d") == "D"
    assert lru.evictions == 1


def test_per_entry_ttl_expires() -> None:
    clock = Clock()
    lru = LRUCache(10, clock=clock)
    lru.set("short", 1, ttl=1)
    lru.set("long", 2, ttl=10)
    clock.now += 1.5
    assert lru.get("short", "gone") == "gone"
    assert lru.get("long") == 2
    assert lru.expirations == 1 and len(lru) == 1


def test_delete_many_prefix_and_clear() -> None:
    lru = LRUCache(10)
    for key in ("p:1", "p:2", "q:1"):
        lru.set(key, key, ttl=60)
    assert lru.delete("p:1") and not lru.delete("p:1")
    assert lru.delete_prefix("p:") == 1
    assert lru.delete_many(["q:1", "zz"]) == 1
    lru.set("x", None, ttl=60)
    assert "x" in lru and lru.get("x", "default") is None  # None is a value, not a miss
    lru.clear()
    assert len(lru) == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_invalid_bound_names_parameter(bad: object) -> None:
    with pytest.raises(ValueError, match=f"max_entries={bad!r}"):
        LRUCache(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl=0"):
        LRUCache(2).set("k", 1, ttl=0)


def test_hit_ratio_timeline_windows() -> None:
    from perf.cache.stats import hit_ratio_timeline

    frame = hit_ratio_timeline(["miss", "miss", "l2", "l1", "l1", "bypass"], window=2, label="x")
    assert frame["hit_ratio"].tolist() == [0.0, 1.0, 0.5]
    assert frame["request"].tolist() == [2, 4, 6] and set(frame["cache"]) == {"x"}
