"""The syllabus' ``CacheManager``, reproduced as written (with its bugs), for the notebook to run.

Two of its bugs are shown failing in notebook 01:

* ``get`` unpickles whatever bytes it finds: anyone who can write to Redis runs code in
  the API (:mod:`perf.cache.demo_pickle`).
* ``clear`` uses ``KEYS pattern``, which walks the whole keyspace in one command while
  Redis serves nobody else (:mod:`perf.cache.demo_keys`).

Do not use this class; :class:`~perf.cache.multilevel.MultiLevelCache` is the fixed version.
"""

from __future__ import annotations

import pickle
from typing import Any, cast

import redis.asyncio as aioredis


class CacheManager:
    """The seed's cache, unchanged but for ``aioredis`` -> ``redis.asyncio`` and type hints."""

    def __init__(self, redis_url: str):
        self.redis = aioredis.from_url(redis_url)

    async def get(self, key: str) -> Any | None:
        """Get value from cache"""
        data = cast(bytes | None, await self.redis.get(key))
        if data:
            return pickle.loads(data)  # noqa: S301  (the bug this module exists to show)
        return None

    async def set(self, key: str, value: Any, expire: int = 300) -> bool:
        """Set value in cache with expiration"""
        try:
            data = pickle.dumps(value)
            await self.redis.set(key, data, ex=expire)
            return True
        except:  # noqa: E722  (as in the seed)
            return False

    async def delete(self, key: str) -> bool:
        """Delete value from cache"""
        return bool(await self.redis.delete(key) > 0)

    async def clear(self, pattern: str = "*") -> int:
        """Clear cache entries matching pattern"""
        keys = await self.redis.keys(pattern)
        if keys:
            return int(await self.redis.delete(*keys))
        return 0

    async def aclose(self) -> None:
        """Close the client (not in the seed, which never closed it)."""
        await self.redis.aclose()
