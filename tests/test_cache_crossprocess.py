"""Cross-process behaviour with real Python subprocesses (perf.cache.demo_worker) sharing one Redis:
L1 invalidation by key and by tag reaches other processes, and single-flight holds across them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perf.cache.demo_worker import CacheWorker
from perf.cache.multilevel import MultiLevelCache


@pytest.fixture
async def workers(redis_url: str, redis_prefix: str) -> AsyncIterator[list[CacheWorker]]:
    namespace = redis_prefix.rstrip(":")
    async with CacheWorker(redis_url, namespace) as a, CacheWorker(redis_url, namespace) as b:
        assert a.pid != b.pid
        yield [a, b]


async def wait_until_miss(worker: CacheWorker, key: str, timeout: float = 3.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = await worker.ask(f"get {key}")
        if not reply["found"] or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_delete_in_one_process_drops_l1_in_the_others(workers: list[CacheWorker], redis_url: str,
                                                             redis_prefix: str) -> None:
    async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as third:
        await third.set("product:1", "v1", tags=["category:books"])
        await third.set("product:2", "v2", tags=["category:books"])
        for worker in workers:
            assert (await worker.ask("fetch product:1"))["source"] == "l2"
            assert (await worker.ask("get product:1"))["source"] == "l1"  # held in the worker's own memory
            assert (await worker.ask("fetch product:2"))["source"] == "l2"
        assert await third.delete("product:1")
        for worker in workers:
            assert (await wait_until_miss(worker, "product:1"))["found"] is False
            assert (await worker.ask("get product:2"))["source"] == "l1"  # untouched
        assert await third.invalidate_tags("category:books") == 1
        for worker in workers:
            assert (await wait_until_miss(worker, "product:2"))["found"] is False
        await third.set("product:3", "v3")
        for worker in workers:
            assert (await worker.ask("fetch product:3"))["source"] == "l2"
        await third.bump_version()
        for worker in workers:
            assert (await wait_until_miss(worker, "product:3"))["found"] is False


@pytest.mark.slow
async def test_single_flight_across_processes(workers: list[CacheWorker]) -> None:
    for worker in workers:
        worker.send("stampede hot 50")
    replies = [await worker.read() for worker in workers]
    assert sum(r["calls"] for r in replies) == 1  # 100 concurrent misses in 2 processes, 1 load
    assert len({v for r in replies for v in r["values"]}) == 1
    assert "unknown command" in (await workers[0].ask("frobnicate x"))["error"]
