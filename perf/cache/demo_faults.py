"""Measuring apparatus: concurrent cache loads while Redis is frozen (``SIGSTOP``) and resumed.

A frozen Redis keeps its sockets open and answers nothing; commands sent meanwhile sit in
its buffers and run when it resumes, including a single-flight ``SET lock NX PX`` whose
caller timed out long ago. Nobody holds that lease, yet every process that misses the key
waits for it. :func:`freeze_under_load` runs "workers" (separate caches, as separate
processes would have) that keep missing and loading a few hot keys, freezes Redis, resumes
it, and reports the longest time after the resume during which no request completed.

>>> result = await freeze_under_load(redis_url, redis_pid, freeze=5.0)
>>> result.stall_after_resume, result.max_latency_after_resume
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from perf.cache.multilevel import MultiLevelCache
from perf.services.process import freeze as freeze_process


@dataclass
class FreezeResult:
    """What clients saw around a Redis freeze (seconds; times relative to the start of the run)."""

    frozen_at: float
    resumed_at: float
    ended_at: float
    completions: list[float] = field(default_factory=list)  # when each request completed
    latencies_after_resume: list[float] = field(default_factory=list)  # requests started after the resume
    errors: list[str] = field(default_factory=list)

    @property
    def stall_after_resume(self) -> float:
        """The longest stretch after the resume with no request completing."""
        times = sorted(t for t in self.completions if t >= self.resumed_at)
        edges = [self.resumed_at, *times, self.ended_at]
        return max(b - a for a, b in zip(edges, edges[1:], strict=False))

    @property
    def max_latency_after_resume(self) -> float:
        """The slowest request among those started after the resume."""
        return max(self.latencies_after_resume, default=0.0)


async def freeze_under_load(redis_url: str, redis_pid: int, *, freeze: float = 5.0, before: float = 1.0,
                            after: float = 4.0, workers: int = 2, clients: int = 16, keys: int = 20,
                            load_seconds: float = 0.01, ttl: float = 0.5,
                            cache_options: dict[str, Any] | None = None) -> FreezeResult:
    """Run ``clients`` concurrent readers in each of ``workers`` caches on ``keys`` hot keys (short
    ``ttl``, so they keep missing and loading), ``SIGSTOP`` Redis for ``freeze`` seconds after
    ``before`` seconds, ``SIGCONT`` it and keep going for ``after`` seconds.

    ``redis_pid`` must be a Redis you own (a private test server): it is really stopped.
    ``cache_options`` go to each :class:`MultiLevelCache` (e.g. ``lock_wait``).
    """
    for name, value in (("freeze", freeze), ("before", before), ("after", after), ("ttl", ttl)):
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0 seconds")
    if workers < 1 or clients < 1 or keys < 1:
        raise ValueError(f"workers={workers}, clients={clients}, keys={keys} must each be >= 1")
    namespace = f"freeze:{uuid.uuid4().hex[:8]}"
    options = {"l1_ttl": ttl / 5, **(cache_options or {})}
    caches = [MultiLevelCache(redis_url, namespace=namespace, **options) for _ in range(workers)]
    origin = time.monotonic()
    result = FreezeResult(frozen_at=before, resumed_at=before + freeze, ended_at=before + freeze + after)
    stop = asyncio.Event()

    async def load() -> str:
        await asyncio.sleep(load_seconds)
        return "value"

    async def client(cache: MultiLevelCache, seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            started = time.monotonic() - origin
            try:
                await cache.fetch(f"hot:{rng.randrange(keys)}", load, ttl=ttl)
            except Exception as exc:  # reported, not raised: the run measures what clients see
                result.errors.append(f"{type(exc).__name__}: {exc}")
            ended = time.monotonic() - origin
            result.completions.append(ended)
            if started >= result.resumed_at:
                result.latencies_after_resume.append(ended - started)
            await asyncio.sleep(0.002)

    for cache in caches:
        await cache.start()
    try:
        tasks = [asyncio.create_task(client(cache, w * clients + c))
                 for w, cache in enumerate(caches) for c in range(clients)]
        await asyncio.sleep(before)
        await freeze_process(redis_pid, freeze)
        result.resumed_at = time.monotonic() - origin
        await asyncio.sleep(after)
        result.ended_at = time.monotonic() - origin
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        for cache in caches:
            await cache.close()
    return result
