"""The guard against a private Redis killed (SIGKILL) under concurrent writes and invalidations,
on asyncio and on uvloop (whose closed transport raises RuntimeError, not OSError)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as redis
import uvloop

from perf.cache.multilevel import MultiLevelCache
from perf.services import EmbeddedRedis

ROUNDS = 16  # the old code let a RuntimeError escape within ~10 uvloop rounds
WRITERS = 64
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


async def load() -> str:
    return "from-db"


async def writer(cache: MultiLevelCache, n: int, stop: asyncio.Event, go: asyncio.Event) -> int:
    """Request handlers' writes in a loop: store, invalidate by tag, delete, read, with short pauses
    between them so some pooled connections sit idle when Redis dies (their transports close
    under them: the uvloop case). Returns the calls made."""
    rng = random.Random(n)
    calls = 0
    while not stop.is_set():
        key = f"p:{n}:{calls % 5}"
        for step in range(4):
            await go.wait()
            if step == 0:
                await cache.set(key, {"n": n}, tags=[f"product:{n}"])
            elif step == 1:
                await cache.invalidate_tags(f"product:{n}", "category:x")
            elif step == 2:
                await cache.delete(key)
            else:
                await cache.fetch(key, load, tags=[f"product:{n}"])
            calls += 1
            await asyncio.sleep(rng.uniform(0, 0.02))
    return calls


async def wait_recovered(cache: MultiLevelCache, timeout: float = 5.0) -> None:
    """Read fresh keys until Redis is back (the first call after retry_interval replays)."""
    deadline = time.monotonic() + timeout
    while not cache.redis_available and time.monotonic() < deadline:
        await cache.fetch(f"probe:{time.monotonic()}", load)
        await asyncio.sleep(0.05)
    assert cache.redis_available and not cache.pending


async def one_round(server: EmbeddedRedis, rng: random.Random, *, idle: bool) -> None:
    """Kill Redis under concurrent writers; with ``idle`` the writers pause around the kill,
    so the next calls all find connections whose server is gone (the publish-after-commit case)."""
    async with MultiLevelCache(server.url, namespace="kill", redis_timeout=0.2, retry_interval=0.2) as cache:
        assert cache.l2 is not None
        channel = cache.l2.channel
        stop, go = asyncio.Event(), asyncio.Event()
        go.set()
        tasks = [asyncio.create_task(writer(cache, n, stop, go)) for n in range(WRITERS)]
        await asyncio.sleep(rng.uniform(0.02, 0.15))  # the kill lands in the middle of calls
        if idle:
            go.clear()
            await asyncio.sleep(0.3)  # calls in flight finish; their connections go back to the pool
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.1)  # the event loop sees the connections close
        go.set()
        await asyncio.sleep(0.05)
        # after the kill: these cannot reach Redis, so they must be queued
        assert await cache.invalidate_tags("after-kill") == 0
        await cache.delete("gone")
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert not errors, f"exceptions escaped the cache: {errors!r}"
        assert not cache.redis_available
        gone = cache.l2.full_key("gone")
        assert "after-kill" in cache.pending.tags and gone in cache.pending.keys

        await asyncio.to_thread(server.start)
        listener = redis.from_url(server.url)
        pubsub = listener.pubsub()
        try:
            await pubsub.subscribe(channel)
            await wait_recovered(cache)
            deadline = time.monotonic() + 5
            replayed: set[str] = set()
            while gone not in replayed and time.monotonic() < deadline:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    replayed.update(orjson.loads(message["data"]).get("keys") or ())
            assert gone in replayed, "the delete made while Redis was down was not replayed to other processes"
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await listener.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_redis_killed_under_writes_raises_nothing_and_replays(private_redis: EmbeddedRedis, loop: str) -> None:
    rng = random.Random(11)
    for attempt in range(ROUNDS):
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(one_round(private_redis, rng, idle=attempt % 2 == 1))
