"""perf.cache.multilevel: one contract, run against a pure in-memory cache and real Redis (cashews-style)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as redis

from perf.cache.multilevel import MultiLevelCache

MakeCache = Callable[..., Awaitable[MultiLevelCache]]


@pytest.fixture(params=["memory", "redis"])
async def make_cache(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> AsyncIterator[MakeCache]:
    caches: list[MultiLevelCache] = []

    async def make(**kwargs: object) -> MultiLevelCache:
        url = redis_url if request.param == "redis" else None
        cache = MultiLevelCache(url, namespace=redis_prefix.rstrip(":"), **kwargs)  # type: ignore[arg-type]
        caches.append(await cache.start())
        return cache

    try:
        yield make
    finally:
        for cache in caches:
            await cache.close()


class Loader:
    """Counts calls; optionally slow, so concurrent callers overlap."""

    def __init__(self, value: object = "v", delay: float = 0.0) -> None:
        self.value, self.delay, self.calls = value, delay, 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value


async def test_get_or_load_then_hits(make_cache: MakeCache) -> None:
    cache = await make_cache()
    loader = Loader({"id": 1})
    first = await cache.fetch("p:1", loader)
    second = await cache.fetch("p:1", loader)
    assert (first.source, second.source) == ("miss", "l1")
    assert second.value == {"id": 1} and loader.calls == 1
    assert await cache.get_or_load("p:1", loader) == {"id": 1}


async def test_set_get_delete(make_cache: MakeCache) -> None:
    cache = await make_cache()
    assert (await cache.get("k")).found is False
    await cache.set("k", [1, 2])
    assert (await cache.get("k")).value == [1, 2]
    assert await cache.delete("k") is True
    assert (await cache.get("k")).found is False
    assert await cache.delete("k") is False


async def test_ttl_expiry(make_cache: MakeCache) -> None:
    cache = await make_cache()
    loader = Loader()
    await cache.fetch("k", loader, ttl=0.15)
    assert (await cache.fetch("k", loader)).source == "l1"
    await asyncio.sleep(0.3)
    assert (await cache.fetch("k", loader)).source == "miss"
    assert loader.calls == 2


async def test_lru_bound(make_cache: MakeCache) -> None:
    cache = await make_cache(l1_max_entries=3)
    for i in range(5):
        await cache.set(f"k{i}", i)
    assert cache.l1 is not None and len(cache.l1) == 3


async def test_none_is_cached_only_when_asked(make_cache: MakeCache) -> None:
    cache = await make_cache()
    loader = Loader(None)
    await cache.fetch("absent", loader)
    await cache.fetch("absent", loader)
    assert loader.calls == 2
    await cache.fetch("absent2", loader, cache_none=True)
    hit = await cache.fetch("absent2", loader, cache_none=True)
    assert loader.calls == 3 and hit.source == "l1" and hit.value is None


async def test_tag_invalidation(make_cache: MakeCache) -> None:
    cache = await make_cache()
    await cache.set("p:1", 1, tags=["product:1", "category:books"])
    await cache.set("p:2", 2, tags=["category:books"])
    await cache.set("p:3", 3, tags=["category:toys"])
    assert await cache.invalidate_tags("category:books") == 2
    assert [(await cache.get(k)).found for k in ("p:1", "p:2", "p:3")] == [False, False, True]
    with pytest.raises(ValueError, match="at least one tag"):
        await cache.invalidate_tags()


async def test_tags_computed_from_the_loaded_value(make_cache: MakeCache) -> None:
    """A list page is tagged with the products on it, which only the load knows."""
    cache = await make_cache()

    def product_tags(page: dict[str, list[int]]) -> list[str]:
        return ["list", *(f"product:{i}" for i in page["ids"])]

    for key, ids in (("page:1", [1, 2]), ("page:2", [3, 4])):
        assert (await cache.fetch(key, Loader({"ids": ids}), tags=product_tags)).source == "miss"
    assert await cache.invalidate_tags("product:3") == 1
    assert [(await cache.get(k)).found for k in ("page:1", "page:2")] == [True, False]
    assert await cache.invalidate_tags("list") == 1  # page:1 carried the fixed tag as well


async def test_version_bump_invalidates_everything(make_cache: MakeCache) -> None:
    cache = await make_cache()
    await cache.set("a", 1)
    await cache.set("b", 2)
    await cache.bump_version()
    assert not (await cache.get("a")).found and not (await cache.get("b")).found


async def test_single_flight_in_process(make_cache: MakeCache) -> None:
    cache = await make_cache()
    loader = Loader("v", delay=0.05)
    results = await asyncio.gather(*(cache.fetch("hot", loader) for _ in range(100)))
    assert loader.calls == 1
    assert {r.value for r in results} == {"v"}
    assert cache.stats.counts["coalesced"] == 99


async def test_loader_error_propagates_to_all_waiters_and_is_not_cached(make_cache: MakeCache) -> None:
    cache = await make_cache()

    async def boom() -> object:
        await asyncio.sleep(0.02)
        raise LookupError("db says no")

    results = await asyncio.gather(*(cache.fetch("k", boom) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert cache.stats.counts["load_errors"] == 1
    assert (await cache.fetch("k", Loader("ok"))).value == "ok"


async def test_stats_are_exact(make_cache: MakeCache) -> None:
    cache = await make_cache()
    loader = Loader()
    for key in ("a", "b", "a", "a", "c", "b"):
        await cache.fetch(key, loader)
    snap = cache.stats.snapshot()
    assert (snap["misses"], snap["l1_hits"], snap["loads"], snap["reads"]) == (3, 3, 3, 6)
    assert snap["hit_ratio"] == pytest.approx(0.5)
    assert snap["load_time_count"] == 3 and snap["errors"] == 0
    frame = cache.stats.to_frame()
    assert frame.set_index("metric").loc["l1_hits", "value"] == 3


async def test_arguments_are_validated(make_cache: MakeCache) -> None:
    cache = await make_cache()
    with pytest.raises(ValueError, match="ttl=0"):
        await cache.set("k", 1, ttl=0)
    with pytest.raises(ValueError, match="key=''"):
        await cache.get("")
    with pytest.raises(ValueError, match="namespace='a\\*'"):
        MultiLevelCache(None, namespace="a*")


# Redis only ------------------------------------------------------------------------------

@pytest.fixture
async def cache(redis_url: str, redis_prefix: str) -> AsyncIterator[MultiLevelCache]:
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as c:
        yield c


async def test_l2_hit_fills_l1(cache: MultiLevelCache, redis_url: str, redis_prefix: str) -> None:
    await cache.set("k", {"x": 1})
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as other:
        assert [(await other.fetch("k", Loader())).source for _ in range(2)] == ["l2", "l1"]
        assert other.stats.l2_latency.count == 1


async def test_seed_pattern_delete_deletes_nothing_but_clear_does(cache: MultiLevelCache,
                                                                    redis_client: redis.Redis) -> None:
    for i in range(30):
        await cache.set(f"products:{i}", i)
    await cache.set("users:1", 1)
    pattern = cache.l2.full_key("products:*")  # type: ignore[union-attr]
    assert await redis_client.delete(pattern) == 0  # DEL takes names, not patterns
    assert await cache.clear("products:*") == 30
    assert (await cache.get("users:1")).found


async def test_undecodable_value_is_a_miss_and_a_counted_error(cache: MultiLevelCache,
                                                               redis_client: redis.Redis) -> None:
    bad = b"1\n" + b"\x00" * 16 + b"{not json"  # a valid stamp (sequence 1, no tags), then bytes that do not decode
    await redis_client.set(cache.l2.full_key("bad"), bad)  # type: ignore[union-attr]
    result = await cache.fetch("bad", Loader("fresh"))
    assert (result.value, result.source) == ("fresh", "miss")
    assert cache.stats.errors["serialization"] == 1


async def test_tag_sets_live_as_long_as_their_longest_entry(cache: MultiLevelCache,
                                                            redis_client: redis.Redis) -> None:
    await cache.set("long", 1, ttl=100, tags=["t"])
    await cache.set("short", 2, ttl=5, tags=["t"])
    assert await redis_client.ttl(cache.l2.tag_key("t")) > 90  # type: ignore[union-attr]


async def test_using_redis_cache_before_start_or_after_close_is_an_error(redis_url: str, redis_prefix: str) -> None:
    cache = MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":"))
    try:
        with pytest.raises(RuntimeError, match="await cache.start"):
            await cache.get("k")
    finally:
        await cache.close()
    with pytest.raises(RuntimeError, match="closed"):
        await cache.get("k")
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as used:
        await used.set("k", 1)
    with pytest.raises(RuntimeError, match="closed"):
        await used.fetch("other", Loader())


async def test_a_burst_queues_for_a_bounded_pool_of_connections(redis_url: str, redis_prefix: str,
                                                                 redis_client: redis.Redis) -> None:
    namespace = redis_prefix.rstrip(":")
    cache = MultiLevelCache(redis_url, namespace=namespace, l1_max_entries=0, redis_max_connections=3,
                             redis_timeout=2.0)  # the queue wait is bounded by redis_timeout too
    name = "burst-" + namespace.replace(":", "-")
    cache.l2.client.connection_pool.connection_kwargs["client_name"] = name  # type: ignore[union-attr]
    async with cache:
        await cache.set("k", "v")
        results = await asyncio.gather(*(cache.get("k") for _ in range(200)))
        assert {r.source for r in results} == {"l2"} and cache.stats.errors["redis"] == 0
        ours = [c for c in await redis_client.client_list() if c.get("name") == name]
        assert 1 <= len(ours) <= 3



async def test_a_miss_costs_two_redis_round_trips_and_leaves_no_lease(cache: MultiLevelCache,
                                                                       redis_client: redis.Redis,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The L2 read takes the load lease in the same script, and the store releases it: 2 round trips a
    miss (a read, a lease, a re-read, a store and a release took 5). A value another process stored is
    read without a lease; a loader's None is not stored and its lease is released all the same."""
    assert cache.l2 is not None

    sent: list[str] = []
    execute = cache.l2.client.execute_command

    async def counting(*args: object, **kwargs: object) -> object:  # every command the cache sends, still sent
        sent.append(str(args[0]))
        return await execute(*args, **kwargs)

    monkeypatch.setattr(cache.l2.client, "execute_command", counting)

    def lock(key: str) -> str:
        assert cache.l2 is not None
        return cache.l2.leases.key(cache.l2.full_key(key))

    await cache.fetch("warm", Loader("w"), tags=["t"])  # the scripts are loaded into Redis once
    sent.clear()
    result = await cache.fetch("fresh", Loader("mine"), tags=["t"])
    assert (result.value, result.source) == ("mine", "miss")
    assert sent == ["EVALSHA", "EVALSHA"], sent
    assert await redis_client.exists(lock("fresh")) == 0
    await cache.l2.set("other", "from-another-process", ttl=60)
    result = await cache.fetch("other", Loader("mine"))
    assert (result.value, result.source) == ("from-another-process", "l2")
    assert await redis_client.exists(lock("other")) == 0
    assert (await cache.fetch("none", Loader(None))).value is None
    assert await redis_client.exists(lock("none")) == 0


async def test_l1_bounded_by_bytes(make_cache: MakeCache) -> None:
    payload = {"description": "x" * 1_000}  # ~1 KB serialized
    cache = await make_cache(l1_max_bytes=5_000)
    for i in range(10):
        await cache.set(f"k{i}", payload)
    assert cache.l1 is not None
    assert len(cache.l1) == 4 and 4_000 < cache.l1.bytes <= 5_000 and cache.l1.evictions == 6
    assert (await cache.get("k9")).source == "l1"  # the newest stayed in L1
    if cache.l2 is not None:  # the evicted ones are still in Redis, and a read puts them back in L1
        assert (await cache.get("k0")).source == "l2"
        assert (await cache.get("k0")).source == "l1"
        assert "k5" not in {key.rsplit(":", 1)[-1] for key in cache.l1._data}  # evicted to make room
        assert cache.l1.bytes <= 5_000


async def test_l1_byte_size_is_the_serialized_length(redis_url: str, redis_prefix: str) -> None:
    payload = {"id": 1, "name": "product 1", "price": 9.99, "description": "abc" * 40}
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":"), l1_max_bytes=1_000_000) as writer, \
            MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":"), l1_max_bytes=1_000_000) as reader:
        await writer.set("p:1", payload)
        for _ in range(100):  # the reader's L1 takes no copy a concurrent invalidation could overtake
            if reader.stats.counts["invalidations_received"]:
                break
            await asyncio.sleep(0.01)
        assert (await reader.get("p:1")).source == "l2"
        assert writer.l1 is not None and reader.l1 is not None and writer.l2 is not None
        stored = await writer.l2.get_raw(writer.l2.full_key("p:1"))
        assert stored is not None
        # the size counted on write (encoded once) and on an L2 read is the bytes Redis holds for the value
        assert writer.l1.bytes == reader.l1.bytes == len(stored) - len(stored.partition(b"\n")[0]) - 1


async def test_invalid_l1_max_bytes_names_parameter() -> None:
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match=f"l1_max_bytes={bad!r}"):
            MultiLevelCache(None, l1_max_bytes=bad)  # type: ignore[arg-type]
