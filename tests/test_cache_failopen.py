"""Fail-open and recovery against a private Redis we stop, start and stall (never the shared one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from perf.cache.errors import CacheUnavailable
from perf.cache.multilevel import MultiLevelCache
from perf.services import EmbeddedRedis
from perf.services.process import free_port

FAST = {"redis_timeout": 0.2, "retry_interval": 0.2}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


async def load(value: str = "from-db") -> str:
    return value


async def wait_recovered(cache: MultiLevelCache, timeout: float = 5.0) -> str:
    """Read fresh keys until one is not bypassed; returns that read's source."""
    deadline = time.monotonic() + timeout
    for attempt in range(10_000):
        source = (await cache.fetch(f"probe:{attempt}", load)).source
        if source != "bypass" or time.monotonic() > deadline:
            return source
        await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


@pytest.mark.slow
async def test_redis_down_fails_open_and_recovers(private_redis: EmbeddedRedis) -> None:
    async with MultiLevelCache(private_redis.url, namespace="fo", **FAST) as cache, \
            MultiLevelCache(private_redis.url, namespace="fo", **FAST) as other:
        await cache.set("held", "v")
        deadline = time.monotonic() + 5  # a read racing the set's own message would (rightly) not trust L2
        while not other.stats.counts["invalidations_received"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert (await other.fetch("held", load)).source == "l2"
        private_redis.stop()
        # the subscription drops at once: hearing no invalidation bus, the cache empties L1 and bypasses it
        deadline = time.monotonic() + 5
        while cache.coherence.hearing and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert (await cache.fetch("held", load)).source == "bypass"  # another process may have changed it
        result = await cache.fetch("new", load)
        assert (result.value, result.source) == ("from-db", "bypass")  # loader, no exception
        assert not cache.redis_available
        assert cache.stats.errors["redis"] >= 1 and cache.stats.counts["bypass"] == 2
        await cache.delete("held")
        assert cache.pending.keys  # queued for Redis

        private_redis.start()
        assert await wait_recovered(cache) == "miss"
        assert cache.redis_available
        heard = other.stats.counts["invalidations_received"]
        await cache.set("after", "v2")
        deadline = time.monotonic() + 5
        while other.stats.counts["invalidations_received"] == heard and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert (await other.fetch("after", load)).source == "l2"
        # `other` missed the delete's message while Redis was down: its reconnect clears its L1
        deadline = time.monotonic() + 5
        while (await other.get("held")).found and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not (await other.get("held")).found


@pytest.mark.slow
async def test_slow_redis_times_out_into_bypass(private_redis: EmbeddedRedis) -> None:
    async with MultiLevelCache(private_redis.url, namespace="slow", **FAST) as cache:
        await cache.set("k", "cached")
        assert cache.l1 is not None
        cache.l1.clear()
        staller = redis.from_url(private_redis.url)
        try:
            stall = asyncio.create_task(staller.execute_command("DEBUG", "SLEEP", "3.0"))
            await asyncio.sleep(0.1)
            started = time.perf_counter()
            result = await cache.fetch("k", load)
            elapsed = time.perf_counter() - started
            await stall
        finally:
            await staller.aclose()
        assert (result.value, result.source) == ("from-db", "bypass")
        assert elapsed < 1.0  # the 0.2 s timeout, not the 3 s stall (15x apart; 5x margin over the timeout)
        assert await wait_recovered(cache) == "miss"


async def test_fail_closed_raises(private_redis: EmbeddedRedis) -> None:
    async with MultiLevelCache(private_redis.url, namespace="fc", fail_open=False, **FAST) as cache:
        await cache.set("k", 1)
        private_redis.stop()
        with pytest.raises(CacheUnavailable, match="fail_open=True"):
            await cache.fetch("other", load)
        with pytest.raises(CacheUnavailable, match="fail_open=False"):
            await cache.fetch("other", load)


async def test_starts_degraded_on_a_dead_port() -> None:
    async with MultiLevelCache(f"redis://127.0.0.1:{free_port()}/0", namespace="dead", **FAST) as cache:
        assert not cache.redis_available
        assert [(await cache.fetch("k", load)).source for _ in range(2)] == ["bypass", "bypass"]  # no bus: no L1
        assert cache.stats.errors["redis"] >= 1
