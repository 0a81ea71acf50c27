"""The syllabus' mini-project cache as mode ``baseline`` uses it, its invalidation bug kept.

The mini-project caches whole responses as JSON (its ``CacheManager`` is a ujson copy of
the day's first one) under ``products:{category}:{page}:{per_page}`` and ``product:{id}``
and, after a write, "invalidates" the list pages with ``cache.delete("products:*")``:
``DEL`` takes key *names*, not patterns, so it deletes a key that never exists and every
cached list page stays stale until its TTL runs out. This module reproduces that; the fixed
version is the tag invalidation of :class:`perf.cache.multilevel.MultiLevelCache` (mode
``+cache``).

It stores JSON (orjson), not the first ``CacheManager``'s pickle: a served app never
unpickles bytes from Redis (whoever can write a key would run code in the API). The pickle
version, :class:`perf.cache.naive.CacheManager`, only runs in notebook 01's demonstration
of that attack, in a subprocess (:mod:`perf.cache.demo_pickle`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as redis

from perf.api.timing import timed


class SeedCache:
    """The seed's get-or-load and its write-time ``delete`` calls, keys prefixed with ``namespace``."""

    def __init__(self, redis_url: str, *, namespace: str, ttl: float = 300.0) -> None:
        self.redis = redis.from_url(redis_url)
        self.namespace = namespace
        self.ttl = max(int(ttl), 1)
        self.hits = 0
        self.misses = 0

    def list_key(self, category: int | None, page: int, per_page: int) -> str:
        """The seed's list key, ``products:{category}:{page}:{per_page}`` (``?after=`` is not part of it)."""
        return f"{self.namespace}:products:{category}:{page}:{per_page}"

    def product_key(self, product_id: int) -> str:
        """The seed's detail key, ``product:{id}``."""
        return f"{self.namespace}:product:{product_id}"

    async def fetch(self, key: str, loader: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """``(value, hit)``: the cached value when the seed's ``if cached:`` holds, else load and set.

        Redis round trips and decoding count as ``cache`` in ``Server-Timing`` (the loader's
        queries as ``db``), so a breakdown of the baseline does not put its cache in ``app``.
        """
        with timed("cache"):
            data = await self.redis.get(key)
            try:
                cached = orjson.loads(data) if data else None
            except orjson.JSONDecodeError:  # not ours (or corrupted): a miss, overwritten below, never a 500
                cached = None
        if cached:  # the seed's `if cached:`
            self.hits += 1
            return cached, True
        self.misses += 1
        value = await loader()
        with timed("cache"):
            await self.redis.set(key, orjson.dumps(value), ex=self.ttl)
        return value, False

    async def invalidate(self, product_id: int) -> None:
        """After a write: the product's own key (works), then the seed's pattern "delete" (deletes nothing)."""
        with timed("cache"):
            await self.redis.delete(self.product_key(product_id))
            await self.redis.delete(f"{self.namespace}:products:*")  # the seed's bug: DEL does not take patterns

    def stats(self) -> dict[str, Any]:
        """Hits and misses of this process, JSON-ready."""
        total = self.hits + self.misses
        return {"kind": "seed CacheManager", "hits": self.hits, "misses": self.misses,
                "hit_ratio": self.hits / total if total else None}

    async def close(self) -> None:
        """Close the Redis client."""
        await self.redis.aclose()
