"""The plumbing under :class:`~perf.cache.multilevel.MultiLevelCache`: the two levels,
their lifecycle, Redis health (fail-open, recovery, replay of missed invalidations), the
pub/sub wiring, and the raw L1/L2 reads and writes. The public API is in ``multilevel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, Self

import redis.asyncio as redis
from redis.exceptions import RedisError

from perf.cache.errors import CacheUnavailable, SerializationError
from perf.cache.invalidation import InvalidationBus
from perf.cache.lru import L1Entry, LRUCache
from perf.cache.redis_cache import L2Entry, RedisCache, create_redis_client, no_wait_retry, validate_namespace
from perf.cache.serializers import Serializer
from perf.cache.singleflight import RedisLease, SingleFlight
from perf.cache.stats import CacheStats

logger = logging.getLogger("perf.cache.multilevel")

REDIS_ERRORS = (RedisError, OSError)  # asyncio/builtin TimeoutError is an OSError
_MAX_PENDING = 10_000


class CacheLevels:
    """L1 + L2 and their plumbing; see :class:`~perf.cache.multilevel.MultiLevelCache` for the API."""

    def __init__(self, redis_url: str | None = None, *, namespace: str = "cache", default_ttl: float = 300.0,
                 l1_max_entries: int = 10_000, l1_ttl: float = 30.0, serializer: Serializer | None = None,
                 redis_timeout: float = 0.25, fail_open: bool = True, retry_interval: float = 1.0,
                 xfetch_beta: float = 1.0, lock_lease: float = 10.0, lock_wait: float | None = None,
                 redis_max_connections: int = 32) -> None:
        validate_namespace(namespace)
        for name, value in (("default_ttl", default_ttl), ("redis_timeout", redis_timeout),
                            ("retry_interval", retry_interval), ("lock_lease", lock_lease)):
            if not value > 0:
                raise ValueError(f"{name}={value!r} must be > 0 seconds")
        if l1_max_entries < 0 or l1_ttl < 0:
            raise ValueError(f"l1_max_entries={l1_max_entries!r} and l1_ttl={l1_ttl!r} must be >= 0 (0 disables L1)")
        if xfetch_beta < 0:
            raise ValueError(f"xfetch_beta={xfetch_beta!r} must be >= 0 (1.0 is the default, 0 disables XFetch)")
        self.namespace = namespace
        self.default_ttl = float(default_ttl)
        self.l1_ttl = float(l1_ttl)
        self.fail_open = fail_open
        self.retry_interval = retry_interval
        self.xfetch_beta = xfetch_beta
        self.lock_wait = lock_lease if lock_wait is None else lock_wait
        self.stats = CacheStats()
        self.l1: LRUCache | None = LRUCache(l1_max_entries) if l1_max_entries and l1_ttl else None
        self.l2: RedisCache | None = None
        self._bus: InvalidationBus | None = None
        self._lease: RedisLease | None = None
        self._pubsub_client: redis.Redis | None = None
        self._flight = SingleFlight()
        self._local_tags: dict[str, set[str]] = {}
        self._failed = redis_url is not None  # until start(): sends the first L2 call down the slow path
        self._down_until = 0.0
        self._pending_keys: set[str] = set()
        self._pending_tags: set[str] = set()
        self._pending_bump = False
        self._started = False
        self._closed = False
        if redis_url is not None:
            client = create_redis_client(redis_url, timeout=redis_timeout, max_connections=redis_max_connections)
            self.l2 = RedisCache(client, namespace=namespace,
                                 serializer=serializer, owns_client=True)
            self._lease = RedisLease(self.l2.client, lease=lock_lease)
            # the subscriber blocks on reads: no socket timeout there, only on connect
            self._pubsub_client = redis.from_url(redis_url, socket_connect_timeout=redis_timeout,
                                                 retry=no_wait_retry(), health_check_interval=0)
            self._bus = InvalidationBus(self._pubsub_client, self.l2.channel, on_message=self._on_invalidation,
                                        on_connect=self._on_bus_connect, on_error=lambda exc: self.stats.error("pubsub"))

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, *, timeout: float = 2.0) -> Self:
        """Load the namespace version and subscribe to invalidations (waits up to ``timeout``
        seconds for the subscription; if Redis is down the cache starts degraded). Idempotent."""
        if self._closed:
            raise RuntimeError("this MultiLevelCache is closed; create a new one")
        if self._started:
            return self
        self._started = True
        if self._bus is not None:
            self._bus.start()
            if await self._bus.wait_connected(timeout):
                self._failed = False
            else:
                self._mark_failed(CacheUnavailable("no pub/sub subscription"), raise_=False)
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop the subscriber and close both Redis clients (idempotent). Logs loads still in flight."""
        if self._closed:
            return
        self._closed = True
        self._failed = self.l2 is not None  # later L2 calls take the slow path, which refuses
        if len(self._flight):
            logger.warning("closing cache %r with %d loads in flight", self.namespace, len(self._flight))
        if self._bus is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._bus.close(), timeout)
        if self.l2 is not None:
            await self.l2.close()
        if self._pubsub_client is not None:
            await self._pubsub_client.aclose()

    @property
    def redis_available(self) -> bool:
        """False while Redis is considered down (after a failure, until it answers again)."""
        return self.l2 is not None and not self._failed

    def _ttl(self, ttl: float | None) -> float:
        if ttl is None:
            return self.default_ttl
        if not ttl > 0:
            raise ValueError(f"ttl={ttl!r} must be > 0 seconds (or None for default_ttl={self.default_ttl})")
        return float(ttl)

    def _key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValueError(f"key={key!r} must be a non-empty str (build one with perf.cache.keys.make_key)")
        return self.l2.full_key(key) if self.l2 is not None else f"{self.namespace}:{key}"

    # fail-open ---------------------------------------------------------------------------
    def _mark_failed(self, exc: BaseException, *, raise_: bool = True) -> None:
        self.stats.error("redis")
        if not self._failed:
            logger.warning("cache %r: Redis unavailable (%s); serving from L1/loader", self.namespace, exc)
        self._failed = True
        self._down_until = time.monotonic() + self.retry_interval
        if raise_ and not self.fail_open:
            raise CacheUnavailable(f"Redis failed for cache {self.namespace!r}: {exc!r}; "
                                   "pass fail_open=True to serve from L1/loader instead") from exc

    async def _l2_ready(self) -> bool:
        """True if L2 may be used now; after a failure, probes (and recovers) once per retry_interval."""
        if self.l2 is None:
            return False
        if not self._failed:
            return True
        if not self._started or self._closed:
            raise RuntimeError(f"cache {self.namespace!r} is {'closed' if self._closed else 'not started'}: "
                               "use `async with MultiLevelCache(...) as cache` or `await cache.start()` first")
        if time.monotonic() < self._down_until:
            if not self.fail_open:
                raise CacheUnavailable(f"Redis is down for cache {self.namespace!r}; retrying in "
                                       f"{self._down_until - time.monotonic():.2f}s (fail_open=False)")
            return False
        try:
            await self._recover()
        except REDIS_ERRORS as exc:
            self._mark_failed(exc)
            return False
        return True

    async def _recover(self) -> None:
        assert self.l2 is not None
        await self.l2.load_version()
        if self._pending_bump:
            await self.l2.bump_version()
            await self._publish({"version": self.l2.version})
        if self._pending_tags:
            tags = list(self._pending_tags)
            await self._publish({"keys": (await self.l2.invalidate_tags(tags))[1]})
        if self._pending_keys:
            keys = list(self._pending_keys)
            await self.l2.client.unlink(*keys)
            await self._publish({"keys": keys})
        self._pending_keys.clear()
        self._pending_tags.clear()
        self._pending_bump = False
        self._failed = False
        logger.info("cache %r: Redis is back", self.namespace)

    # invalidation bus --------------------------------------------------------------------
    async def _on_bus_connect(self, reconnected: bool) -> None:
        assert self.l2 is not None
        await self.l2.load_version()
        if reconnected and self.l1 is not None:
            self.l1.clear()  # messages sent while we were disconnected are lost

    def _on_invalidation(self, message: dict[str, Any]) -> None:
        self.stats.incr("invalidations_received")
        if self.l1 is None:
            return
        if "version" in message and self.l2 is not None:
            self.l2.version = int(message["version"])
            self.l1.clear()
        keys = message.get("keys")
        if keys:
            self.l1.delete_many(keys)

    async def _publish(self, message: dict[str, Any]) -> None:
        if self._bus is not None:
            await self._bus.publish(message)
            self.stats.incr("invalidations_sent")

    # reads -------------------------------------------------------------------------------
    def _from_l1(self, full: str) -> L1Entry | None:
        """The L1 entry for ``full`` or None; counts the hit."""
        if self.l1 is None:
            return None
        entry = self.l1.get_entry(full)
        if entry is not None:
            self.stats.counts["l1_hits"] += 1
        return entry

    async def _from_l2(self, full: str, *, count: bool = True) -> L2Entry | None:
        """The decoded L2 entry for ``full`` or None (a miss, a bad value, or Redis down); fills L1."""
        assert self.l2 is not None
        started = time.perf_counter()
        try:
            data = await self.l2.client.get(full)
        except REDIS_ERRORS as exc:
            self._mark_failed(exc)
            return None
        if data is None:
            return None
        try:
            entry = self.l2.decode(data)
        except SerializationError as exc:
            self.stats.error("serialization")
            logger.warning("cache %r: dropping undecodable entry %s: %s", self.namespace, full, exc)
            with contextlib.suppress(*REDIS_ERRORS):
                await self.l2.client.unlink(full)
            return None
        if count:
            self.stats.record_l2(time.perf_counter() - started)
            self.stats.counts["l2_hits"] += 1
        if self.l1 is not None:
            ttl = min(self.l1_ttl, entry.time_to_expire())
            if ttl > 0:
                self.l1.set(full, entry.value, ttl, l2_expires_at=entry.expires_at, delta=entry.delta)
        return entry

    # writes ------------------------------------------------------------------------------
    async def _store(self, full: str, value: Any, ttl: float, tags: Iterable[str], delta: float = 0.0) -> None:
        tags = list(tags)
        if self.l1 is not None:
            self.l1.set(full, value, min(self.l1_ttl, ttl), l2_expires_at=time.time() + ttl, delta=delta)
        if self.l2 is None:
            for tag in tags:
                self._local_tags.setdefault(tag, set()).add(full)
            return
        if not await self._l2_ready():
            return
        try:
            data = self.l2.encode(value, ttl, delta)
            px = max(int(ttl * 1000), 1)
            if tags:
                await self.l2._set_with_tags(keys=[full, *map(self.l2.tag_key, tags)], args=[data, px])
            else:
                await self.l2.client.set(full, data, px=px)
        except REDIS_ERRORS as exc:
            self._mark_failed(exc)

    async def _broadcast(self, full: list[str]) -> None:
        if self.l2 is None or self._failed:
            return
        try:
            await self._publish({"keys": full})
        except REDIS_ERRORS as exc:
            self._mark_failed(exc)

    def _remember(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), bump: bool = False) -> None:
        """Queue an invalidation Redis missed, replayed on recovery (overflow: bump the version)."""
        self._pending_keys.update(keys)
        self._pending_tags.update(tags)
        if bump or len(self._pending_keys) + len(self._pending_tags) > _MAX_PENDING:
            self._pending_bump = True
            self._pending_keys.clear()
            self._pending_tags.clear()
