"""Faults answer fast: a private Redis frozen with SIGSTOP under concurrent loads, and a
single-flight lease nobody holds (never the shared Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from perf.cache.demo_faults import freeze_under_load
from perf.cache.multilevel import MultiLevelCache
from perf.services import EmbeddedRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


@pytest.mark.slow
async def test_no_request_stalls_after_a_redis_freeze(private_redis: EmbeddedRedis) -> None:
    # Many keys with a short TTL: every request misses, so lease requests are in flight when
    # Redis freezes and run when it resumes. Before the fix those leases (10 s, nobody holding
    # them) stalled every request for their key: no completion at all for the 2.5 s after the
    # resume, requests waiting ~10 s. Now they are released on recovery.
    assert private_redis.pid is not None
    result = await freeze_under_load(private_redis.url, private_redis.pid, freeze=2.0, before=0.5, after=2.5,
                                     keys=500, load_seconds=0.002, ttl=0.05)
    assert not result.errors
    assert result.latencies_after_resume, "no request completed after the resume"
    assert result.stall_after_resume < 1.0, f"no request completed for {result.stall_after_resume:.2f}s"
    assert result.max_latency_after_resume < 1.5, f"a request took {result.max_latency_after_resume:.2f}s"


async def test_a_lease_nobody_holds_costs_a_bounded_wait(private_redis: EmbeddedRedis) -> None:
    async def load() -> str:
        return "loaded"

    async with MultiLevelCache(private_redis.url, namespace="orphan", lock_wait=0.3) as cache:
        assert cache.l2 is not None
        raw = redis.from_url(private_redis.url)
        try:  # a lease left by a process that died (or a request Redis ran after its caller gave up)
            await raw.set(cache.l2.leases.key(cache.l2.full_key("k")), "ghost", px=60_000)
        finally:
            await raw.aclose()
        started = time.perf_counter()
        result = await cache.fetch("k", load)
        elapsed = time.perf_counter() - started
    assert (result.value, result.source) == ("loaded", "miss")
    assert 0.25 < elapsed < 1.5  # lock_wait, not the lease's 60 s
    assert cache.stats.counts["lock_waits"] == 1
