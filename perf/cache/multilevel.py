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
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from perf.cache.levels import REDIS_ERRORS, CacheLevels
from perf.cache.xfetch import should_refresh_early

T = TypeVar("T")
Source = Literal["l1", "l2", "miss", "bypass"]
_COUNTER: dict[str, str] = {"l1": "l1_hits", "l2": "l2_hits", "miss": "misses", "bypass": "bypass"}


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


class MultiLevelCache(CacheLevels):
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
    ``redis_max_connections``: connections to Redis at most; a burst beyond it queues for one.
    """


    async def get(self, key: str) -> CacheResult[Any]:
        """Read ``key`` without loading: ``CacheResult(value, "l1"|"l2")``, or ``found=False``
        with source ``"miss"`` (or ``"bypass"`` when Redis is unavailable)."""
        full = self._key(key)
        entry = self._from_l1(full)
        if entry is not None:
            return CacheResult(entry.value, "l1")
        if (self.l2 is not None and not self._failed) or await self._l2_ready():
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
        if entry is not None:
            if self._refresh_due(entry.delta, entry.l2_expires_at):
                value, _ = await self._flight.do(
                    "refresh:" + full, lambda: self._load(full, loader, ttl, tags, cache_none, True))
                return CacheResult(value, "l1")
            return CacheResult(entry.value, "l1")
        # concurrent L1 misses share one L2 read, and on an L2 miss one load
        (value, source), shared = await self._flight.do(
            full, lambda: self._after_l1_miss(full, loader, ttl, tags, cache_none))
        if shared:
            self.stats.incr("coalesced")
            self.stats.incr(_COUNTER[source])
        return CacheResult(value, source)

    def _refresh_due(self, delta: float, expires_at: float) -> bool:
        """XFetch: should this hit recompute now, before the entry expires?"""
        if not self.xfetch_beta or delta <= 0 or expires_at <= 0:
            return False
        due = should_refresh_early(delta=delta, time_to_expire=expires_at - time.time(), beta=self.xfetch_beta)
        if due:
            self.stats.incr("early_refreshes")
        return due

    async def _after_l1_miss(self, full: str, loader: Callable[[], Awaitable[T]], ttl: float, tags: Iterable[str],
                             cache_none: bool) -> tuple[T, Source]:
        if (self.l2 is not None and not self._failed) or await self._l2_ready():
            entry = await self._from_l2(full)
            if entry is not None:
                if self._refresh_due(entry.delta, entry.expires_at):
                    return await self._load(full, loader, ttl, tags, cache_none, True), "l2"
                return entry.value, "l2"
        source: Source = "bypass" if self.l2 is not None and self._failed else "miss"
        self.stats.incr(_COUNTER[source])
        return await self._load(full, loader, ttl, tags, cache_none, False), source

    async def _load(self, full: str, loader: Callable[[], Awaitable[T]], ttl: float, tags: Iterable[str],
                    cache_none: bool, early: bool) -> T:
        """Run the loader once across processes (lease + wait for the leader's value), then store."""
        token: str | None = None
        lock_key = ""
        try:
            if not early and self._lease is not None and await self._l2_ready():
                assert self.l2 is not None
                lock_key = self.l2.lock_key(full)
                try:
                    token = await self._lease.acquire(lock_key)
                    if token is None:
                        self.stats.incr("lock_waits")
                        token, entry = await self._wait_for_leader(full, lock_key)
                    else:  # filled between our miss and the lease?
                        entry = await self._from_l2(full, count=False)
                    if entry is not None:
                        return entry.value
                except REDIS_ERRORS as exc:
                    self._mark_failed(exc)
            started = time.perf_counter()
            try:
                value = await loader()
            except BaseException:
                self.stats.incr("load_errors")
                raise
            delta = time.perf_counter() - started
            self.stats.incr("loads")
            self.stats.record_load(delta)
            if value is not None or cache_none:
                await self._store(full, value, ttl, tags, delta)
            return value
        finally:
            if token is not None and self._lease is not None:
                with contextlib.suppress(*REDIS_ERRORS):
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
            except REDIS_ERRORS as exc:
                self._mark_failed(exc)
        self._remember(keys=full)
        return local

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
            except REDIS_ERRORS as exc:
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
            except REDIS_ERRORS as exc:
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
