"""perf.cache.lru: the bound, LRU order and per-entry TTL (with a fake clock)."""

from __future__ import annotations

import orjson
import pytest

from perf.cache.lru import LRUCache, estimate_size


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


def test_byte_bound_evicts_least_recently_used_until_under_budget() -> None:
    lru = LRUCache(100, max_bytes=1_000)
    for key in "abcd":
        assert lru.set(key, key, ttl=60, size=300)
    assert len(lru) == 3 and lru.bytes == 900 and "a" not in lru and lru.evictions == 1
    assert lru.get("b") == "b"  # b is now most recently used
    lru.set("big", "x", ttl=60, size=700)  # needs two evictions: c, then d
    assert set(lru._data) == {"b", "big"} and lru.bytes == 1_000 and lru.evictions == 3
    lru.set("b", "b2", ttl=60, size=100)  # a replaced entry counts once, with its new size
    assert lru.bytes == 800 and lru.get("b") == "b2"


def test_byte_accounting_follows_deletes_expiry_and_clear() -> None:
    clock = Clock()
    lru = LRUCache(100, max_bytes=10_000, clock=clock)
    lru.set("p:1", 1, ttl=60, size=100)
    lru.set("p:2", 2, ttl=60, size=200)
    lru.set("short", 3, ttl=1, size=400)
    assert lru.bytes == 700
    clock.now += 2
    assert "short" not in lru and lru.bytes == 300
    assert lru.delete("p:1") and lru.bytes == 200
    assert lru.delete_prefix("p:") == 1 and lru.bytes == 0
    lru.set("q", 4, ttl=60, size=50)
    lru.clear()
    assert lru.bytes == 0 and len(lru) == 0


def test_entry_larger_than_the_budget_is_not_stored() -> None:
    lru = LRUCache(10, max_bytes=100)
    lru.set("k", "old", ttl=60, size=10)
    assert lru.set("k", "new", ttl=60, size=101) is False
    assert "k" not in lru and lru.bytes == 0 and lru.oversize == 1  # the stale old value is gone too


def test_size_defaults_to_the_serialized_length() -> None:
    product = {"id": 7, "name": "product 7", "price": 12.5, "tags": ["a", "b"]}
    assert estimate_size(product) == len(orjson.dumps(product))
    assert estimate_size({1, 2, 3}) > 0  # not JSON: pickled
    lru = LRUCache(10, max_bytes=10_000)
    lru.set("p", product, ttl=60)
    assert lru.bytes == len(orjson.dumps(product))
    count_only = LRUCache(10)
    assert count_only.set("p", product, ttl=60) and count_only.bytes == 0  # count-only: no estimate taken


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_invalid_byte_bound_names_parameter(bad: object) -> None:
    with pytest.raises(ValueError, match=f"max_bytes={bad!r}"):
        LRUCache(10, max_bytes=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size=-1"):
        LRUCache(10, max_bytes=100).set("k", 1, ttl=60, size=-1)


def test_tags_index_entries_and_lives_and_dies_with_them() -> None:
    lru = LRUCache(2)
    lru.set("page:1", [1, 2], 60, tags=["product:1", "product:2"])
    lru.set("p:1", {"id": 1}, 60, tags=["product:1"])
    assert lru.delete_tags(["product:1"]) == 2 and len(lru) == 0
    lru.set("a", 1, 60, tags=["t"])
    lru.set("b", 2, 60, tags=["u"])
    lru.set("c", 3, 60, tags=["u"])  # evicts "a": its tag goes with it
    assert "t" not in lru._by_tag and lru._by_tag["u"] == {"b", "c"}
    lru.clear()
    assert lru._by_tag == {} and lru.delete_tags(["u"]) == 0
