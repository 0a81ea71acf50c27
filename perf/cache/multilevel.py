"""MultiLevelCache: an in-process LRU (L1) in front of Redis (L2).

>>> async with MultiLevelCache(redis_url, namespace="products", default_ttl=300) as cache:
...     result = await cache.fetch(f"product:{pid}", lambda: load_product(pid), tags=[f"product:{pid}"])
...     result.value, result.source          # source: "l1" | "l2" | "miss" | "bypass"
...     await cache.invalidate_tags(f"product:{pid}")   # on writes; reaches every process
...     cache.stats.snapshot()                 # for /metrics

* Reads try L1, then L2 (filling L1), then run the loader once per key (single-flight in
  this process, a Redis lease across processes) and store the value in both levels.
* XFetch refreshes hot keys early, before they expire, so they never all miss at once.
* Writes and deletes go through both levels and are published on a pub/sub channel so
  every other process drops the key from its L1 (:mod:`perf.cache.invalidation`).
* Invalidation by key, by tag (Redis sets, no scan) and by namespace version.
* Fail-open (default): if Redis is unreachable or slower than ``redis_timeout``, reads
  are served from L1 or the loader (``source="bypass"``), the error is counted, Redis is
  left alone for ``retry_interval`` seconds, and the cache recovers by itself when it
  answers again (deletes made while it was down are replayed). With ``fail_open=False``
  it raises :class:`~perf.cache.errors.CacheUnavailable` instead.
* ``redis_url=None`` gives a pure in-process cache with the same API.

Cached values are shared objects: treat them as read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Generic, Iterable, Literal, TypeVar

import redis.asyncio as redis
from redis.exceptions import RedisError

from perf.cache.errors import CacheUnavailable, SerializationError
from perf.cache.invalidation import InvalidationBus
from perf.cache.lru import LRUCache
from perf.cache.redis_cache import RedisCache, create_redis_client, no_wait_retry, validate_namespace
from perf.cache.serializers import Serializer
from perf.cache.singleflight import RedisLease, SingleFlight
from perf.cache.stats import CacheStats
from perf.cache.xfetch import should_refresh_early

logger = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["l1", "l2", "miss", "bypass"]
_REDIS_ERRORS = (RedisError, OSError)  # asyncio/builtin TimeoutError is an OSError
_MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class CacheResult(Generic[T]):
    """A read's value and where it came from.

    ``source``: ``"l1"`` (in-process hit), ``"l2"`` (Redis hit), ``"miss"`` (the loader
    ran, or :meth:`MultiLevelCache.get` found nothing), ``"bypass"`` (Redis unavailable:
    served by the loader or nothing). ``found`` is False only when :meth:`~MultiLevelCache.get`
    found nothing (``value`` is then None).
    """

    value: T
    source: Source
    found: bool = True


class MultiLevelCache:
    """L1 (bounded LRU, per-entry TTL) in front of L2 (Redis), with stampede protection.

    Parameters (all keyword except ``redis_url``):
    ``redis_url``: Redis to use as L2 and invalidation bus; None for L1 only.
    ``namespace``: key prefix and channel; caches sharing it share entries and invalidations.
    ``default_ttl``: seconds an entry lives in L2 when ``ttl`` is not given.
    ``l1_max_entries`` / ``l1_ttl``: L1 bound and the longest an entry lives in L1 (0 disables L1).
    ``serializer``: L2 encoding (default orjson; see :mod:`perf.cache.serializers`).
    ``redis_timeout``: seconds before a Redis call counts as failed.
    ``fail_open``: degrade to L1/loader when Redis fails (True) or raise CacheUnavailable.
    ``retry_interval``: seconds Redis is left alone after a failure before trying again.
    ``xfetch_beta``: early-refresh eagerness (0 disables XFetch).
    ``lock_lease``: seconds a cross-process single-flight lease lasts (longer than the slowest loader).
    ``lock_wait``: seconds a process waits for another's load before loading itself (default lock_lease).
    """

    def __init__(self, redis_url: str | None = None, *, namespace: str = "cache", default_ttl: float = 300.0,
                 l1_max_entries: int = 10_000, l1_ttl: float = 30.0, serializer: Serializer | None = None,
                 redis_timeout: float = 0.25, fail_open: bool = True, retry_interval: float = 1.0,
                 xfetch_beta: float = 1.0, lock_lease: float = 10.0, lock_wait: float | None = None) -> None:
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
        self._failed = False
        self._down_until = 0.0
        self._pending_keys: set[str] = set()
        self._pending_tags: set[str] = set()
        self._pending_bump = False
        self._started = False
        self._closed = False
        if redis_url is not None:
            self.l2 = RedisCache(create_redis_client(redis_url, timeout=redis_timeout), namespace=namespace,
                                 serializer=serializer, owns_client=True)
            self._lease = RedisLease(self.l2.client, lease=lock_lease)
            # the subscriber blocks on reads: no socket timeout there, only on connect
            self._pubsub_client = redis.from_url(redis_url, socket_connect_timeout=redis_timeout,
                                                 retry=no_wait_retry(), health_check_interval=0)
            self._bus = InvalidationBus(self._pubsub_client, self.l2.channel, on_message=self._on_invalidation,
                                        on_connect=self._on_bus_connect, on_error=lambda exc: self.stats.error("pubsub"))

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, *, timeout: float = 2.0) -> "MultiLevelCache":
        """Load the namespace version and subscribe to invalidations (waits up to ``timeout``
        seconds for the subscription; if Redis is down the cache starts degraded). Idempotent."""
        if self._closed:
            raise RuntimeError("this MultiLevelCache is closed; create a new one")
        if self._started:
            return self
        self._started = True
        if self._bus is not None:
            self._bus.start()
            if not await self._bus.wait_connected(timeout):
                self._mark_failed(CacheUnavailable("no pub/sub subscription"), raise_=False)
        return self

    async def __aenter__(self) -> "MultiLevelCache":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop the subscriber and close both Redis clients (idempotent). Logs loads still in flight."""
        if self._closed:
            return
        self._closed = True
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
        if time.monotonic() < self._down_until:
            if not self.fail_open:
                raise CacheUnavailable(f"Redis is down for cache {self.namespace!r}; retrying in "
                                       f"{self._down_until - time.monotonic():.2f}s (fail_open=False)")
            return False
        try:
            await self._recover()
        except _REDIS_ERRORS as exc:
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
    def _from_l1(self, full: str) -> Any:
        """The L1 entry for ``full`` or None; counts the hit."""
        if self.l1 is None:
            return None
        entry = self.l1.get_entry(full)
        if entry is not None:
            self.stats.counts["l1_hits"] += 1
        return entry

    async def _from_l2(self, full: str, *, count: bool = True) -> Any:
        """The decoded L2 entry for ``full`` or None (a miss, a bad value, or Redis down); fills L1."""
        assert self.l2 is not None
        started = time.perf_counter()
        try:
            data = await self.l2.client.get(full)
        except _REDIS_ERRORS as exc:
            self._mark_failed(exc)
            return None
        if data is None:
            return None
        try:
            entry = self.l2.decode(data)
        except SerializationError as exc:
            self.stats.error("serialization")
            logger.warning("cache %r: dropping undecodable entry %s: %s", self.namespace, full, exc)
            with contextlib.suppress(*_REDIS_ERRORS):
                await self.l2.client.unlink(full)
            return None
        if count:
            self.stats.l2_latency.record(time.perf_counter() - started)
            self.stats.counts["l2_hits"] += 1
        if self.l1 is not None:
            ttl = min(self.l1_ttl, entry.time_to_expire())
            if ttl > 0:
                self.l1.set(full, entry.value, ttl, l2_expires_at=entry.expires_at, delta=entry.delta)
        return entry

    async def get(self, key: str) -> CacheResult[Any]:
        """Read ``key`` without loading: ``CacheResult(value, "l1"|"l2")``, or ``found=False``
        with source ``"miss"`` (or ``"bypass"`` when Redis is unavailable)."""
        full = self._key(key)
        entry = self._from_l1(full)
        if entry is not None:
            return CacheResult(entry.value, "l1")
        if await self._l2_ready():
            entry = await self._from_l2(full)
            if entry is not None:
                return CacheResult(entry.value, "l2")
            if not self._failed:
                self.stats.incr("misses")
                return CacheResult(None, "miss", found=False)
        self.stats.incr("bypass" if self.l2 is not None else "misses")
        return CacheResult(None, "bypass" if self.l2 is not None else "miss", found=False)

    async def get_or_load(self, key: str, loader: Callable[[], Awaitable[T]], *, ttl: float | None = None,
                          tags: Iterable[str] = (), cache_none: bool = False) -> T:
        """The cached value of ``key``, or ``await loader()`` stored for ``ttl`` seconds with ``tags``."""
        return (await self.fetch(key, loader, ttl=ttl, tags=tags, cache_none=cache_none)).value

    async def fetch(self, key: str, loader: Callable[[], Awaitable[T]], *, ttl: float | None = None,
                    tags: Iterable[str] = (), cache_none: bool = False) -> CacheResult[T]:
        """Like :meth:`get_or_load` but returns a :class:`CacheResult` telling where the value came from.

        ``loader`` is a zero-argument coroutine function; concurrent misses for one key run
        it once. ``cache_none=False`` (default) does not store a None result, so the next
        read loads again; ``True`` caches "not found" answers too. Hits close to expiry may
        refresh early (XFetch): the caller then gets the fresh value.
        """
        if not callable(loader):
            raise TypeError(f"loader={loader!r} must be a zero-argument async function, e.g. lambda: load(pid)")
        ttl = self._ttl(ttl)
        full = self._key(key)
        entry = self._from_l1(full)
        source: Source = "l1"
        if entry is None and await self._l2_ready():
            entry = await self._from_l2(full)
            source = "l2"
        if entry is not None:
            expires_at = entry.l2_expires_at if source == "l1" else entry.expires_at
            if self.xfetch_beta and entry.delta > 0 and should_refresh_early(
                    delta=entry.delta, time_to_expire=expires_at - time.time(), beta=self.xfetch_beta):
                self.stats.incr("early_refreshes")
                value, _ = await self._flight.do(full, lambda: self._load(full, loader, ttl, tags, cache_none, True))
                return CacheResult(value, source)
            return CacheResult(entry.value, source)
        source = "bypass" if self.l2 is not None and self._failed else "miss"
        self.stats.incr("bypass" if source == "bypass" else "misses")
        value, shared = await self._flight.do(full, lambda: self._load(full, loader, ttl, tags, cache_none, False))
        if shared:
            self.stats.incr("coalesced")
        return CacheResult(value, source)

    async def _load(self, full: str, loader: Callable[[], Awaitable[T]], ttl: float, tags: Iterable[str],
                    cache_none: bool, early: bool) -> T:
        """Run the loader once across processes (lease + wait for the leader's value), then store."""
        token: str | None = None
        lock_key = ""
        if not early and self._lease is not None and await self._l2_ready():
            assert self.l2 is not None
            lock_key = self.l2.lock_key(full)
            try:
                token = await self._lease.acquire(lock_key)
                if token is None:
                    self.stats.incr("lock_waits")
                    token, entry = await self._wait_for_leader(full, lock_key)
                    if entry is not None:
                        return entry.value
                else:
                    entry = await self._from_l2(full, count=False)  # filled between our miss and the lease?
                    if entry is not None:
                        return entry.value
            except _REDIS_ERRORS as exc:
                self._mark_failed(exc)
        try:
            started = time.perf_counter()
            try:
                value = await loader()
            except BaseException:
                self.stats.incr("load_errors")
                raise
            delta = time.perf_counter() - started
            self.stats.incr("loads")
            self.stats.load_time.record(delta)
            if value is not None or cache_none:
                await self._store(full, value, ttl, tags, delta)
            return value
        finally:
            if token is not None and self._lease is not None:
                with contextlib.suppress(*_REDIS_ERRORS):
                    await asyncio.shield(self._lease.release(lock_key, token))

    async def _wait_for_leader(self, full: str, lock_key: str) -> tuple[str | None, Any]:
        """Poll L2 until another process's value lands, the lease frees (take it) or lock_wait passes."""
        assert self.l2 is not None and self._lease is not None
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)
            entry = await self._from_l2(full, count=False)
            if entry is not None:
                return None, entry
            if self._failed:
                return None, None
            token = await self._lease.acquire(lock_key)
            if token is not None:
                return token, None
        return None, None

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
        except _REDIS_ERRORS as exc:
            self._mark_failed(exc)

    async def set(self, key: str, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Store ``value`` in both levels for ``ttl`` seconds; other processes drop their L1 copy."""
        full = self._key(key)
        await self._store(full, value, self._ttl(ttl), tags)
        self.stats.incr("sets")
        await self._broadcast([full])

    async def delete(self, key: str) -> bool:
        """Delete ``key`` from both levels and from every other process's L1; True if it existed anywhere."""
        return bool(await self.delete_many([key]))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys (one round trip); returns how many existed in L2 (or L1 without Redis)."""
        full = [self._key(k) for k in keys]
        if not full:
            return 0
        self.stats.incr("deletes", len(full))
        local = self.l1.delete_many(full) if self.l1 is not None else 0
        if self.l2 is None:
            return local
        if await self._l2_ready():
            try:
                existed = int(await self.l2.client.unlink(*full))
                await self._publish({"keys": full})
                return max(existed, local)
            except _REDIS_ERRORS as exc:
                self._mark_failed(exc)
        self._remember(keys=full)
        return local

    async def _broadcast(self, full: list[str]) -> None:
        if self.l2 is None or self._failed:
            return
        try:
            await self._publish({"keys": full})
        except _REDIS_ERRORS as exc:
            self._mark_failed(exc)

    def _remember(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), bump: bool = False) -> None:
        """Queue an invalidation Redis missed, replayed on recovery (overflow: bump the version)."""
        self._pending_keys.update(keys)
        self._pending_tags.update(tags)
        if bump or len(self._pending_keys) + len(self._pending_tags) > _MAX_PENDING:
            self._pending_bump = True
            self._pending_keys.clear()
            self._pending_tags.clear()

    async def invalidate_tags(self, *tags: str) -> int:
        """Delete every entry carrying any of ``tags``, in every process; returns how many entries it deleted.

        With Redis down this process clears its whole L1 (it cannot know which keys carry
        the tags) and replays the invalidation when Redis returns.
        """
        if not tags:
            raise ValueError("invalidate_tags() needs at least one tag, e.g. invalidate_tags('product:42')")
        if self.l2 is None:
            keys = set().union(*(self._local_tags.pop(t, set()) for t in tags))
            return self.l1.delete_many(keys) if self.l1 is not None else 0
        if await self._l2_ready():
            try:
                deleted, keys = await self.l2.invalidate_tags(tags)
                if self.l1 is not None:
                    self.l1.delete_many(keys)
                if keys:
                    await self._publish({"keys": keys})
                return deleted
            except _REDIS_ERRORS as exc:
                self._mark_failed(exc)
        if self.l1 is not None:
            self.l1.clear()
        self._remember(tags=tags)
        return 0

    async def bump_version(self) -> int:
        """Invalidate the whole namespace at once by incrementing its version (O(1), no scan)."""
        if self.l1 is not None:
            self.l1.clear()
        if self.l2 is None:
            return 0
        if await self._l2_ready():
            try:
                version = await self.l2.bump_version()
                await self._publish({"version": version})
                return version
            except _REDIS_ERRORS as exc:
                self._mark_failed(exc)
        self._remember(bump=True)
        return self.l2.version

    async def clear(self, pattern: str = "*") -> int:
        """Delete L2 entries matching the glob ``pattern`` with SCAN + UNLINK, and clear L1 everywhere."""
        if self.l1 is not None:
            self.l1.clear()
        if self.l2 is None or not await self._l2_ready():
            return 0
        deleted = await self.l2.clear(pattern)
        await self._publish({"version": self.l2.version})  # tells everyone to clear L1
        return deleted
