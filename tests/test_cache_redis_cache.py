"""perf.cache.redis_cache (L2 on its own) and perf.cache.demo_workload against real Redis and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from perf.cache.demo_workload import create_catalog, load_category_report, load_product, zipf_ids
from perf.cache.errors import SerializationError
from perf.cache.redis_cache import RedisCache


@pytest.fixture
async def l2(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisCache]:
    async with RedisCache.from_url(redis_url, namespace=redis_prefix.rstrip(":")) as cache:
        yield cache


async def test_set_get_many_pipelined_delete_many(l2: RedisCache) -> None:
    await l2.set_many({f"k{i}": {"i": i} for i in range(10)}, ttl=60)
    keys = [f"k{i}" for i in range(12)]
    assert await l2.get_many(keys) == await l2.get_many_pipelined(keys) == {f"k{i}": {"i": i} for i in range(10)}
    assert await l2.delete_many(["k0", "k1", "nope"]) == 2
    assert await l2.delete("k2") and not await l2.delete("k2")
    entry = await l2.get("k3")
    assert entry is not None and entry.value == {"i": 3} and 55 < entry.time_to_expire() <= 60


async def test_a_miss_takes_the_load_lease_and_the_store_releases_it(l2: RedisCache) -> None:
    """get_or_lease: a read and a lease in one round trip; store(release=...): the value and the release."""
    full = l2.full_key("page:1")
    lock = l2.lock_key(full)
    assert await l2.get_or_lease(full, "tok-a", lease=5) == (None, True)  # a miss: this caller leads
    assert await l2.get_or_lease(full, "tok-b", lease=5) == (None, False)  # another leads: follow
    assert await l2.client.get(lock) == b"tok-a"
    await l2.store(full, {"items": [1]}, 60, tags=["list"], release=(lock, "tok-b"))  # not its lease
    assert await l2.client.get(lock) == b"tok-a"
    await l2.store(full, {"items": [2]}, 60, tags=["list"], release=(lock, "tok-a"))
    assert await l2.client.exists(lock) == 0
    data, leased = await l2.get_or_lease(full, "tok-c", lease=5)
    assert not leased and data is not None and l2.decode(data).value == {"items": [2]}
    assert await l2.client.exists(lock) == 0  # a hit takes no lease
    assert await l2.client.sismember(l2.tag_key("list"), full)  # the tags were stored with the release


async def test_versions_clear_and_purge(l2: RedisCache) -> None:
    await l2.set("a", 1, ttl=60, tags=["t"])
    old_key = l2.full_key("a")
    assert await l2.bump_version() == 1 and l2.full_key("a") != old_key
    assert await l2.get("a") is None
    await l2.set("a", 2, ttl=60)
    assert await l2.clear("*") == 2  # entries of every version, not tags or the version key
    assert await l2.load_version() == 1
    assert await l2.purge() == 2  # the tag set and the version key
    assert await l2.load_version() == 0


async def test_decode_rejects_short_or_bad_bytes(l2: RedisCache) -> None:
    with pytest.raises(SerializationError, match="shorter than its 16-byte header"):
        l2.decode(b"abc")
    with pytest.raises(ValueError, match="ttl=0"):
        await l2.set("k", 1, ttl=0)
    with pytest.raises(ValueError, match="batch=0"):
        await l2.clear(batch=0)


async def test_catalog_is_idempotent_and_the_loaders_work(database_url: str, pg_schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await create_catalog(conn, schema=pg_schema, rows=200) == 200
        assert await create_catalog(conn, schema=pg_schema, rows=200) == 200
        assert await conn.fetchval(f"SELECT count(*) FROM {pg_schema}.catalog") == 200
        report = await load_category_report(conn, 3, schema=pg_schema, top=5)
        assert report["products"] == 10 and len(report["top"]) == 5
        assert (await load_product(conn, 7, schema=pg_schema))["id"] == 7  # type: ignore[index]
        assert await load_product(conn, 10_000, schema=pg_schema) is None
        with pytest.raises(ValueError, match="schema='x; drop'"):
            await create_catalog(conn, schema="x; drop", rows=100)
    finally:
        await conn.close()


def test_zipf_ids_are_skewed_and_reproducible() -> None:
    ids = zipf_ids(5000, population=100, seed=1)
    assert ids == zipf_ids(5000, population=100, seed=1)
    assert ids.count(1) > 10 * ids.count(50) and set(ids) <= set(range(1, 101))
