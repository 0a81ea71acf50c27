"""A multi-level cache (in-process LRU in front of Redis) with invalidation, warming,
statistics and stampede protection.

One idea per module:

* :mod:`perf.cache.keys`: namespaced keys, keys built from a call's bound arguments.
* :mod:`perf.cache.serializers`: orjson (default), stdlib json, HMAC-signed pickle.
* :mod:`perf.cache.lru`: L1, a bounded LRU with per-entry TTL.
* :mod:`perf.cache.redis_cache`: L2 on ``redis.asyncio``: TTL, tags, ``SCAN`` + ``UNLINK``.
* :mod:`perf.cache.invalidation`: L1 invalidation across processes through pub/sub.
* :mod:`perf.cache.singleflight`: one loader per key in a process; :mod:`perf.cache.lease`: one across processes.
* :mod:`perf.cache.xfetch`: probabilistic early refresh.
* :mod:`perf.cache.stats`: hits/misses per level, errors, latency percentiles.
* :mod:`perf.cache.guard`: fail-open in one place: Redis outages, recovery, replay of missed work.
* :mod:`perf.cache.multilevel`: :class:`MultiLevelCache`, which puts it all together.
* :mod:`perf.cache.decorator`: ``@cached``.
* :mod:`perf.cache.warming`: preload a set of keys with bounded concurrency.
"""

from perf.cache.decorator import cached
from perf.cache.errors import CacheError, CacheUnavailable, SerializationError
from perf.cache.keys import make_key
from perf.cache.multilevel import CacheResult, MultiLevelCache, Source
from perf.cache.redis_cache import RedisCache

__all__ = [
    "CacheError",
    "CacheResult",
    "CacheUnavailable",
    "MultiLevelCache",
    "RedisCache",
    "SerializationError",
    "Source",
    "cached",
    "make_key",
]
