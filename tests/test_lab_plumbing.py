"""perf.lab.plumbing: a notebook's closing cell, against real Redis."""

from __future__ import annotations

import os

import pytest
import redis.asyncio as redis

from perf.lab import cleanup
from perf.services import ServiceHandle


async def test_cleanup_drops_the_prefix_keys_restores_the_cores_and_detaches(
        redis_url: str, redis_client: redis.Redis, redis_prefix: str) -> None:
    ours, neighbour = redis_prefix + "nb05_api:", redis_prefix + "nb05_api_other:"
    await redis_client.mset({f"{ours}{i}": i for i in range(1_203)} | {f"{neighbour}1": 1, f"{ours[:-1]}": 1})
    handle = ServiceHandle(database_url="postgresql://unused", redis_url=redis_url)
    original = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if original is not None and len(original) > 1:
        os.sched_setaffinity(0, {min(original)})  # what the set-up cell's pin_process did
    try:
        assert await cleanup(handle, key_prefix=ours, affinity=original, batch=500) == 1_203
        assert [key async for key in redis_client.scan_iter(match=f"{ours}*")] == []
        assert await redis_client.exists(f"{neighbour}1", ours[:-1]) == 2  # another prefix's keys stay
        assert original is None or os.sched_getaffinity(0) == original
        assert handle._closed
    finally:
        if original is not None:
            os.sched_setaffinity(0, original)


async def test_cleanup_refuses_a_pattern_or_an_empty_affinity(redis_url: str) -> None:
    handle = ServiceHandle(database_url="postgresql://unused", redis_url=redis_url)
    with pytest.raises(ValueError, match="glob characters"):
        await cleanup(handle, key_prefix="nb05_api:*")
    with pytest.raises(ValueError, match="affinity is empty"):
        await cleanup(handle, key_prefix="nb05_api:", affinity=[])
    assert not handle._closed  # nothing was done
