"""A multi-level cache (in-process LRU in front of Redis) with invalidation, warming,
statistics and stampede protection.

One idea per module:

* :mod:`perf.cache.keys`: namespaced keys, keys built from a call's bound arguments.
* :mod:`perf.cache.serializers`: orjson (default), stdlib json, HMAC-signed pickle.
* :mod:`perf.cache.lru`: L1, a bounded LRU with per-entry TTL.
* :mod:`perf.cache.redis_cache`: L2 on ``redis.asyncio``: TTL, tags, ``SCAN`` + ``UNLINK``.
* :mod:`perf.cache.invalidation`: L1 invalidation across processes through pub/sub.
* :mod:`perf.cache.relay`: what a cache tells the other processes, and what it does with what they tell it.
* :mod:`perf.cache.singleflight`: one loader per key in a process; :mod:`perf.cache.lease`: one across processes.
* :mod:`perf.cache.xfetch`: probabilistic early refresh.
* :mod:`perf.cache.stats`: hits/misses per level, errors, latency percentiles.
* :mod:`perf.cache.guard`: fail-open in one place: Redis outages, recovery, replay of missed work.
* :mod:`perf.cache.multilevel`: :class:`MultiLevelCache`, which puts it all together.
* :mod:`perf.cache.decorator`: ``@cached``.
* :mod:`perf.cache.warming`: preload a set of keys with bounded concurrency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.cache.decorator import cached
from perf.cache.errors import CacheError, CacheUnavailable, SerializationError
from perf.cache.keys import make_key
from perf.cache.multilevel import CacheResult, MultiLevelCache, Source
from perf.cache.redis_cache import RedisCache
from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.cache import naive
    from perf.cache.demo_decorator import cached_route, handler_metadata, seed_cached, seed_route, serve_users
    from perf.cache.demo_keys import keys_vs_scan
    from perf.cache.demo_memory import l1_rss, payload_sizes
    from perf.cache.demo_pickle import pickle_attack
    from perf.cache.demo_stampede import naive_get_or_load, run_stampede
    from perf.cache.demo_worker import CacheWorker
    from perf.cache.demo_workload import create_catalog, load_category_report, load_product, zipf_ids
    from perf.cache.serializers import JsonSerializer, OrjsonSerializer, SignedPickleSerializer
    from perf.cache.stats import hit_ratio_timeline
    from perf.cache.warming import warm

# The other names a notebook uses (apparatus included), imported on first use: a process that
# imports one module of this package (the API server, a worker) pays for none of them.
_LAZY = {
    "naive": "perf.cache.naive",  # the syllabus' CacheManager, bugs kept: offered as the module it is
    "cached_route": "perf.cache.demo_decorator",
    "handler_metadata": "perf.cache.demo_decorator",
    "seed_cached": "perf.cache.demo_decorator",
    "seed_route": "perf.cache.demo_decorator",
    "serve_users": "perf.cache.demo_decorator",
    "keys_vs_scan": "perf.cache.demo_keys",
    "l1_rss": "perf.cache.demo_memory",
    "payload_sizes": "perf.cache.demo_memory",
    "pickle_attack": "perf.cache.demo_pickle",
    "naive_get_or_load": "perf.cache.demo_stampede",
    "run_stampede": "perf.cache.demo_stampede",
    "CacheWorker": "perf.cache.demo_worker",
    "create_catalog": "perf.cache.demo_workload",
    "load_category_report": "perf.cache.demo_workload",
    "load_product": "perf.cache.demo_workload",
    "zipf_ids": "perf.cache.demo_workload",
    "JsonSerializer": "perf.cache.serializers",
    "OrjsonSerializer": "perf.cache.serializers",
    "SignedPickleSerializer": "perf.cache.serializers",
    "hit_ratio_timeline": "perf.cache.stats",
    "warm": "perf.cache.warming",
}
__all__ = [
    "CacheError", "CacheResult", "CacheUnavailable", "CacheWorker", "JsonSerializer", "MultiLevelCache",
    "OrjsonSerializer", "RedisCache", "SerializationError", "SignedPickleSerializer", "Source", "cached",
    "cached_route", "create_catalog", "handler_metadata", "hit_ratio_timeline", "keys_vs_scan", "l1_rss",
    "load_category_report", "load_product", "make_key", "naive", "naive_get_or_load", "payload_sizes",
    "pickle_attack", "run_stampede", "seed_cached", "seed_route", "serve_users", "warm", "zipf_ids",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
