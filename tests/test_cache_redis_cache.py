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
    await l2.set("tagged", "t1", 60, tags=["t"])
    assert await l2.get_many(["tagged", "k3"]) == await l2.get_many_pipelined(["tagged", "k3"]) == {
        "tagged": "t1", "k3": {"i": 3}}
    await l2.invalidate_tags(["t"])  # the entry stays in Redis, and no read returns it
    assert await l2.get_many(["tagged", "k3"]) == await l2.get_many_pipelined(["tagged", "k3"]) == {"k3": {"i": 3}}


async def test_a_miss_takes_the_load_lease_and_the_store_releases_it(l2: RedisCache) -> None:
    """read: a read and a lease in one round trip; store(release=...): the value and the release."""
    full = l2.full_key("page:1")
    lock = l2.leases.key(full)
    data, leased, seq = await l2.read(full, "tok-a")
    assert (data, leased) == (None, True) and seq > 10**15  # a miss: this caller leads, from now (µs)
    assert (await l2.read(full, "tok-b"))[:2] == (None, False)  # another leads: follow
    assert await l2.client.get(lock) == b"tok-a"
    assert not await l2.store(full, {"items": [1]}, 60, tags=["list"], since=seq, release=(lock, "tok-b"))
    assert await l2.client.get(lock) == b"tok-a"  # not its lease: refused, and the lease stays
    assert await l2.store(full, {"items": [2]}, 60, tags=["list"], since=seq, release=(lock, "tok-a"))
    assert await l2.client.exists(lock) == 0
    data, leased, _ = await l2.read(full, "tok-c")
    assert not leased and data is not None
    entry = l2.decode(data)
    assert (entry.value, entry.tags, entry.seq) == ({"items": [2]}, ("list",), seq)
    assert await l2.client.exists(lock) == 0  # a hit takes no lease


async def test_a_store_after_an_invalidation_of_its_tags_or_a_delete_is_refused(l2: RedisCache) -> None:
    """The race of issue 26: a reader loads the old row, the writer commits and invalidates, then the
    reader stores. The store is refused however the invalidation arrived (a tag, or a delete of the key)."""
    full = l2.full_key("product:1")
    lock = l2.leases.key(full)
    await l2.set("other", "x", 60, tags=["product:1"])  # the tag exists (created by another entry's store)
    _, leased, seq = await l2.read(full, "tok")
    assert leased
    await l2.invalidate_tags(["product:1"])  # the writer, between the reader's load and its store
    assert not await l2.store(full, "old price", 60, tags=["product:1"], since=seq, release=(lock, "tok"))
    assert await l2.get("product:1") is None and await l2.client.exists(lock) == 0  # refused, lease freed
    assert await l2.get("other") is None  # the other entry carrying the tag is unreadable too
    _, leased, seq = await l2.read(full, "tok2")
    await l2.delete("product:1")  # a delete takes the lease
    assert not await l2.store(full, "old price", 60, tags=["product:1"], since=seq, release=(lock, "tok2"))
    _, leased, seq = await l2.read(full, "tok3")
    assert await l2.store(full, "new price", 60, tags=["product:1"], since=seq, release=(lock, "tok3"))
    assert (entry := await l2.get("product:1")) is not None and entry.value == "new price"


async def test_a_lost_tag_version_is_a_miss_never_a_stale_read(l2: RedisCache) -> None:
    """Tag versions may be evicted (maxmemory) or expire: an entry whose tag key is gone is not served,
    and a load that began before any invalidation cannot recreate the tag at an old version."""
    await l2.set("page", [1, 2], 60, tags=["product:7"])
    assert await l2.get("page") is not None
    await l2.client.delete(l2.tag_key("product:7"))  # what an eviction does
    assert await l2.get("page") is None
    full = l2.full_key("page")
    _, leased, seq = await l2.read(full, "tok")
    await l2.invalidate_tags(["unrelated"])  # the sequence moves on while the load runs
    assert not await l2.store(full, [1, 2], 60, tags=["product:7"], since=seq, release=(l2.leases.key(full), "tok"))
    assert await l2.tag_version("product:7") is not None  # recreated at the current sequence
    _, leased, seq = await l2.read(full, "tok")
    assert await l2.store(full, [1, 2], 60, tags=["product:7"], since=seq, release=(l2.leases.key(full), "tok"))
    await l2.client.delete(l2.seq_key)  # the sequence itself lost: it restarts from the clock, not 0
    before = seq
    assert await l2.invalidate_tags(["product:7"]) > before
    assert await l2.get("page") is None


async def test_versions_clear_and_purge(l2: RedisCache) -> None:
    await l2.set("a", 1, ttl=60, tags=["t"])
    old_key = l2.full_key("a")
    assert await l2.bump_version() == 1 and l2.full_key("a") != old_key
    assert await l2.get("a") is None
    await l2.set("a", 2, ttl=60)
    assert await l2.clear("*") == 2  # entries of every version, not tags or the version key
    assert await l2.load_version() == 1
    assert await l2.purge() == 3  # the tag's version, the sequence and the namespace version
    assert await l2.load_version() == 0
    with pytest.raises(ValueError, match="tag='a b'"):
        await l2.set("k", 1, ttl=60, tags=["a b"])


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
