"""Cache warming: preload a set of keys (e.g. the top-N products) before traffic arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from perf.cache.multilevel import MultiLevelCache


@dataclass(frozen=True)
class WarmReport:
    """What :func:`warm` did: keys requested, loaded, skipped (loader returned None), failed, seconds."""

    requested: int
    loaded: int
    skipped: int
    failed: int
    seconds: float
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Keys loaded per second."""
        return self.loaded / self.seconds if self.seconds > 0 else 0.0


async def warm(cache: MultiLevelCache, keys: Iterable[str], loader: Callable[[str], Awaitable[Any]], *,
               concurrency: int = 8, ttl: float | None = None,
               tags: Callable[[str], Iterable[str]] | None = None) -> WarmReport:
    """Load every key with ``loader(key)`` and store it, at most ``concurrency`` loads at a time.

    A loader that raises is counted (its error kept in ``errors``) without stopping the
    others; a loader returning None is skipped. ``tags(key)`` gives each key's tags.
    Values are written with :meth:`MultiLevelCache.set`, so other processes drop stale L1 copies.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r} must be an int >= 1 (e.g. 8: about the DB pool size)")
    todo = list(dict.fromkeys(keys))
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in todo:
        queue.put_nowait(key)
    loaded = skipped = 0
    errors: dict[str, str] = {}

    async def worker() -> None:
        nonlocal loaded, skipped
        while not queue.empty():
            key = queue.get_nowait()
            try:
                value = await loader(key)
            except Exception as exc:  # warming must not stop at one bad key
                errors[key] = repr(exc)
                continue
            if value is None:
                skipped += 1
                continue
            await cache.set(key, value, ttl=ttl, tags=tags(key) if tags else ())
            loaded += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(todo)))))
    return WarmReport(len(todo), loaded, skipped, len(errors), time.perf_counter() - started, errors)
