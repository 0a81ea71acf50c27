"""Cache stampedes: many concurrent requests miss one key at the same moment.

:func:`naive_get_or_load` is the seed's pattern (get; on a miss load and set): every
concurrent miss runs the loader. :func:`run_stampede` fires ``concurrency`` requests at
once through any get-or-load function and counts how many times the loader ran.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from perf.cache.multilevel import MultiLevelCache

GetOrLoad = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


async def naive_get_or_load(cache: MultiLevelCache, key: str, loader: Callable[[], Awaitable[Any]],
                            *, ttl: float | None = None) -> Any:
    """Get, and on a miss load and set, with no coordination: the stampede-prone baseline."""
    hit = await cache.get(key)
    if hit.found:
        return hit.value
    value = await loader()
    await cache.set(key, value, ttl=ttl)
    return value


@dataclass(frozen=True)
class StampedeReport:
    """How many requests, how many loader runs, and how long the burst took."""

    requests: int
    loader_calls: int
    seconds: float


async def run_stampede(get_or_load: GetOrLoad, key: str, loader: Callable[[], Awaitable[Any]], *,
                       concurrency: int = 100) -> StampedeReport:
    """Call ``get_or_load(key, counted_loader)`` ``concurrency`` times at once on a cold key."""
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} must be >= 1 (e.g. 100)")
    calls = 0

    async def counted() -> Any:
        nonlocal calls
        calls += 1
        return await loader()

    started = time.perf_counter()
    await asyncio.gather(*(get_or_load(key, counted) for _ in range(concurrency)))
    return StampedeReport(concurrency, calls, time.perf_counter() - started)
