"""@cached, warming, XFetch and signed pickle through a real MultiLevelCache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from perf.cache.decorator import cached
from perf.cache.multilevel import MultiLevelCache
from perf.cache.serializers import SignedPickleSerializer
from perf.cache.warming import warm


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, redis_url: str, redis_prefix: str) -> AsyncIterator[MultiLevelCache]:
    url = redis_url if request.param == "redis" else None
    async with MultiLevelCache(url, namespace=redis_prefix.rstrip(":")) as c:
        yield c


async def test_cached_normalizes_arguments(cache: MultiLevelCache) -> None:
    calls: list[tuple[str, int]] = []

    @cached(cache, ttl=60)
    async def list_products(category: str, page: int = 1) -> list[str]:
        calls.append((category, page))
        return [f"{category}-{page}"]

    assert await list_products("books") == ["books-1"]
    assert await list_products("books", 1) == ["books-1"]
    assert await list_products(category="books", page=1) == ["books-1"]
    assert await list_products("books", page=2) == ["books-2"]
    assert calls == [("books", 1), ("books", 2)]
    assert list_products.cache_key("books") == list_products.cache_key(category="books", page=1)  # type: ignore[attr-defined]


async def test_cached_method_template_tags_and_none(cache: MultiLevelCache) -> None:
    class Repo:
        def __init__(self) -> None:
            self.calls = 0

        @cached(lambda: cache, key="product:{product_id}", tags=["product:{product_id}"])
        async def get(self, product_id: int) -> dict[str, int] | None:
            self.calls += 1
            return None if product_id < 0 else {"id": product_id}

    a, b = Repo(), Repo()
    assert await a.get(1) == {"id": 1}
    assert await b.get(1) == {"id": 1}  # self is not part of the key: b hits a's entry
    assert (a.calls, b.calls) == (1, 0)
    assert (await cache.get("product:1")).value == {"id": 1}
    await cache.invalidate_tags("product:1")
    assert await b.get(1) == {"id": 1} and b.calls == 1
    await a.get(-1)
    await a.get(-1)
    assert a.calls == 3  # None is not cached by default


async def test_cached_none_when_asked(cache: MultiLevelCache) -> None:
    calls = 0

    @cached(cache, cache_none=True)
    async def find(name: str) -> None:
        nonlocal calls
        calls += 1

    await find("x")
    await find("x")
    assert calls == 1


def test_cached_rejects_bad_definitions() -> None:
    cache = MultiLevelCache(None)
    with pytest.raises(TypeError, match="async function"):
        cached(cache)(lambda x: x)
    with pytest.raises(ValueError, match="no parameter 'pid'"):
        @cached(cache, key="product:{pid}")
        async def get(product_id: int) -> None: ...


async def test_warm_loads_with_bounded_concurrency(cache: MultiLevelCache) -> None:
    running = peak = 0

    async def loader(key: str) -> object:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        if key == "p:13":
            raise LookupError("gone")
        return None if key == "p:7" else {"key": key}

    report = await warm(cache, [f"p:{i}" for i in range(20)], loader, concurrency=4,
                        tags=lambda k: ["warm"])
    assert (report.requested, report.loaded, report.skipped, report.failed) == (20, 18, 1, 1)
    assert "LookupError" in report.errors["p:13"] and peak == 4 and report.seconds > 0
    assert (await cache.get("p:3")).value == {"key": "p:3"}
    assert await cache.invalidate_tags("warm") == 18
    with pytest.raises(ValueError, match="concurrency=0"):
        await warm(cache, ["a"], loader, concurrency=0)


async def test_xfetch_refreshes_before_expiry(cache: MultiLevelCache) -> None:
    version = 0

    async def loader() -> int:
        nonlocal version
        version += 1
        await asyncio.sleep(0.02)
        return version

    cache.xfetch_beta = 0.0
    await cache.fetch("hot", loader, ttl=60)
    assert (await cache.fetch("hot", loader, ttl=60)).value == 1  # beta 0: never early
    cache.xfetch_beta = 1e6  # delta (20 ms) * 1e6 dwarfs the 60 s left: refresh now
    result = await cache.fetch("hot", loader, ttl=60)
    assert (result.value, version) == (2, 2)
    assert cache.stats.counts["early_refreshes"] == 1


async def test_signed_pickle_tampering_in_redis_is_a_miss(redis_url: str, redis_prefix: str,
                                                          redis_client: redis.Redis) -> None:
    serializer = SignedPickleSerializer(b"test-secret-0123456789")
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":"), serializer=serializer,
                               l1_max_entries=0) as cache:
        await cache.set("k", {"when": {1, 2}})
        assert (await cache.get("k")).value == {"when": {1, 2}}
        full = cache.l2.full_key("k")  # type: ignore[union-attr]
        data = bytearray(await redis_client.get(full))
        data[-3] ^= 0xFF
        await redis_client.set(full, bytes(data))
        result = await cache.fetch("k", lambda: asyncio.sleep(0, "reloaded"))
        assert (result.value, result.source) == ("reloaded", "miss")
        assert cache.stats.errors["serialization"] == 1
