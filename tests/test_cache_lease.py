"""perf.cache.lease: the lease on its own, and the same lease taken and released inside the L2 cache's scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from perf.cache.lease import RedisLease
from perf.cache.redis_cache import RedisCache


@pytest.fixture
async def l2(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisCache]:
    async with RedisCache.from_url(redis_url, namespace=redis_prefix.rstrip(":"), lease=0.2) as cache:
        yield cache


async def test_lease_is_exclusive_expires_and_releases_only_with_its_token(redis_client: redis.Redis,
                                                                           redis_prefix: str) -> None:
    lease = RedisLease(redis_client, lease=0.2)
    key = redis_prefix + "lock"
    token = lease.new_token()
    assert await lease.acquire(key, token) and not await lease.acquire(key, lease.new_token())
    assert not await lease.release(key, "someone-else")
    assert await lease.release(key, token)
    assert await lease.acquire(key, lease.new_token())
    await asyncio.sleep(0.3)  # the holder "crashed": the lease runs out by itself
    assert await lease.acquire(key, lease.new_token())
    with pytest.raises(ValueError, match="lease=0"):
        RedisLease(redis_client, lease=0)


async def test_the_cache_scripts_and_the_lease_follow_one_set_of_rules(l2: RedisCache) -> None:
    """A lease the read script took is the lease RedisLease sees; one RedisLease took blocks the script."""
    leases = l2.leases
    full = l2.full_key("page:1")
    lock = leases.key(full)
    assert lock == f"{l2.namespace}:meta:lock:{full}" and leases.lease == 0.2
    assert (await l2.read(full, "tok-a"))[1]  # the miss took the lease ...
    assert not await leases.acquire(lock, "tok-b")  # ... so nobody else can
    assert not await leases.release(lock, "tok-b") and await l2.client.get(lock) == b"tok-a"
    assert 0 < await l2.client.pttl(lock) <= 200  # for the cache's lease duration
    assert await leases.release(lock, "tok-a")
    assert await leases.acquire(lock, "tok-c")
    assert not (await l2.read(full, "tok-d"))[1]  # held through RedisLease: the read script follows
    _, _, seq = await l2.read(full)
    assert not await l2.store(full, "v", 60, since=seq, release=(lock, "tok-d"))  # not its lease: refused
    assert await l2.store(full, "v", 60, since=seq, release=(lock, "tok-c"))  # its lease: stored, released
    assert await l2.client.exists(lock) == 0
