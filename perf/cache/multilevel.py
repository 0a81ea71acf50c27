"""MultiLevelCache: an in-process LRU (L1) in front of Redis (L2).

>>> async with MultiLevelCache(redis_url, namespace="products", default_ttl=300) as cache:
...     result = await cache.fetch(f"product:{pid}", lambda: load_product(pid), tags=[f"product:{pid}"])
...     result.value, result.source          # source: "l1" | "l2" | "miss" | "bypass"
...     await cache.invalidate_tags(f"product:{pid}")   # on writes; reaches every process
...     cache.stats.snapshot()                 # for /metrics

* Reads try L1, then L2 (filling L1), then run the loader once per key (single-flight in
  this process, a Redis lease across processes) and store the value in both levels. The L2
  read takes the lease in the same script, and the store releases it: a miss costs two
  Redis round trips (read-and-lease, store-and-release), not five.
* XFetch refreshes hot keys early, before they expire, so they never all miss at once.
* Writes and deletes go through both levels and are published on a pub/sub channel so
  every other process drops the key from its L1 (:mod:`perf.cache.relay` sends and applies
  them; :mod:`perf.cache.invalidation` subscribes).
* Invalidation by key, by tag (per-tag versions, O(tags), no scan) and by namespace version.
* **No stale store** (the lease and version tokens of "Scaling Memcache at Facebook"): a
  load records the invalidation sequence when it begins, and Redis refuses its store if a
  delete took its lease or one of its tags was invalidated since, in the script that
  writes. Only a load holding the lease stores in Redis.
* **No L1 read another process may have invalidated** (:mod:`perf.cache.coherence`): while
  the cache hears no invalidation bus (Redis unreachable from here, its subscription lost)
  its L1 is emptied and bypassed; a fill that an invalidation overtook is dropped. A second
  bus that travels with the writes themselves (PostgreSQL ``NOTIFY`` in the write's
  transaction: :mod:`perf.cache.pg_invalidation`) keeps L1 usable while Redis is down.
* Fail-open (default): if Redis is unreachable or slower than ``redis_timeout``, reads
  are served from the loader (``source="bypass"``; from L1 too if another bus is heard), the error is counted, Redis is
  left alone for ``retry_interval`` seconds, and the cache recovers by itself when it
  answers again (deletes made while it was down are replayed). With ``fail_open=False``
  it raises :class:`~perf.cache.errors.CacheUnavailable` instead. All of that lives in
  :class:`~perf.cache.guard.RedisGuard`: every Redis call below goes through it.
* ``redis_url=None`` gives a pure in-process cache with the same API.

Cached values are shared objects: treat them as read-only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar

from perf.cache.coherence import L1Coherence, value_digest
from perf.cache.errors import SerializationError
from perf.cache.guard import Missed, RedisGuard
from perf.cache.lru import L1Entry, LRUCache
from perf.cache.redis_cache import L2Entry, RedisCache, create_redis_client, validate_namespace, validate_tags
from perf.cache.relay import InvalidationRelay
from perf.cache.serializers import Serializer
from perf.cache.singleflight import SingleFlight
from perf.cache.stats import CacheStats
from perf.cache.xfetch import should_refresh_early

logger = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["l1", "l2", "miss", "bypass"]
#: An entry's tags: given up front, or computed from the loaded value (a list page tagged with
#: the ids of the products on it, which only the load knows).
Tags = Iterable[str] | Callable[[Any], Iterable[str]]
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


class MultiLevelCache:
    """L1 (bounded LRU, per-entry TTL) in front of L2 (Redis), with stampede protection.

    Parameters (all keyword except ``redis_url``):
    ``redis_url``: Redis to use as L2 and invalidation bus; None for L1 only.
    ``namespace``: key prefix and channel; caches sharing it share entries and invalidations.
    ``default_ttl``: seconds an entry lives in L2 when ``ttl`` is not given.
    ``l1_max_entries`` / ``l1_ttl``: L1 bound and the longest an entry lives in L1 (0 disables L1).
    ``l1_max_bytes``: an L1 bound in bytes as well (None: count only). Each entry counts as
    the length of its serialized form, the bytes this cache writes to or reads from Redis
    anyway (no extra work on a hit); an entry takes ~2.5-4x that in RSS (measured in notebook
    01; see :mod:`perf.cache.lru`).
    ``serializer``: L2 encoding (default orjson; see :mod:`perf.cache.serializers`).
    ``redis_timeout``: seconds before a Redis call counts as failed.
    ``fail_open``: degrade to L1/loader when Redis fails (True) or raise CacheUnavailable.
    ``retry_interval``: seconds Redis is left alone after a failure before trying again.
    ``xfetch_beta``: early-refresh eagerness (0 disables XFetch).
    ``lock_lease``: seconds a cross-process single-flight lease lasts at most (its holder
    releases it as soon as the value is stored; make it about your loader's timeout).
    A release Redis missed (down or frozen), and a lease request that timed out but may
    still run when Redis resumes, are replayed on recovery: no lease outlives an outage.
    ``lock_wait``: seconds a process waits for another's load before loading itself
    (default ``min(lock_lease, 2)``): a lease nobody holds costs a bounded wait, not a stall.
    ``redis_max_connections``: connections to Redis at most; a burst beyond it queues for one.
    """

    def __init__(self, redis_url: str | None = None, *, namespace: str = "cache", default_ttl: float = 300.0,
                 l1_max_entries: int = 10_000, l1_ttl: float = 30.0, l1_max_bytes: int | None = None,
                 serializer: Serializer | None = None,
                 redis_timeout: float = 0.25, fail_open: bool = True, retry_interval: float = 1.0,
                 xfetch_beta: float = 1.0, lock_lease: float = 5.0, lock_wait: float | None = None,
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
        self.xfetch_beta = xfetch_beta
        if lock_wait is not None and lock_wait < 0:
            raise ValueError(f"lock_wait={lock_wait!r} must be >= 0 seconds (None: min(lock_lease, 2))")
        self.lock_wait = min(lock_lease, 2.0) if lock_wait is None else lock_wait
        self.stats = CacheStats()
        if l1_max_bytes is not None and (not isinstance(l1_max_bytes, int) or isinstance(l1_max_bytes, bool)
                                         or l1_max_bytes < 1):
            raise ValueError(f"l1_max_bytes={l1_max_bytes!r} must be an int >= 1 (serialized bytes, e.g. 64 * 2**20) "
                             "or None to bound L1 by l1_max_entries only")
        self.l1: LRUCache | None = (LRUCache(l1_max_entries, max_bytes=l1_max_bytes)
                                    if l1_max_entries and l1_ttl else None)
        self.l2: RedisCache | None = None
        self.coherence = L1Coherence()
        # what Redis missed, and whether it is up, concern the relay (built below: the guard
        # calls these only once the cache has started)
        self._guard = RedisGuard(namespace, stats=self.stats, replay=lambda missed: self._relay.replay(missed),
                                 fail_open=fail_open, retry_interval=retry_interval,
                                 on_change=lambda up: self._relay.redis_state(up))
        self._flight = SingleFlight()
        self._started = False
        self._closed = False
        if redis_url is not None:
            client = create_redis_client(redis_url, timeout=redis_timeout, max_connections=redis_max_connections)
            self.l2 = RedisCache(client, namespace=namespace, serializer=serializer, owns_client=True,
                                 lease=lock_lease)
        self._relay = InvalidationRelay(self.l1, self.coherence, stats=self.stats, guard=self._guard, l2=self.l2,
                                        redis_url=redis_url, connect_timeout=redis_timeout)

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, *, timeout: float = 2.0) -> Self:
        """Load the namespace version and subscribe to invalidations (waits up to ``timeout``
        seconds for the subscription; if Redis is down the cache starts degraded). Idempotent."""
        if self._closed:
            raise RuntimeError("this MultiLevelCache is closed; create a new one")
        if self._started:
            return self
        self._started = True
        if self.l2 is not None:
            self._guard.open(up=await self._relay.start(timeout))
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
        await self._relay.finish(timeout)  # invalidations received from another bus, still on their way to Redis
        self._guard.close()
        if len(self._flight):
            logger.warning("closing cache %r with %d loads in flight", self.namespace, len(self._flight))
        await self._relay.close(timeout)
        if self.l2 is not None:
            await self.l2.close()

    @property
    def retry_interval(self) -> float:
        """Seconds Redis is left alone after a failure before the next call probes it again."""
        return self._guard.retry_interval

    @property
    def redis_available(self) -> bool:
        """False while Redis is considered down (after a failure, until it answers again)."""
        return self.l2 is not None and not self._guard.failed

    @property
    def pending(self) -> Missed:
        """Invalidations (and leases to release) that Redis missed while down, replayed on recovery."""
        return self._guard.missed

    # reads -------------------------------------------------------------------------------
    async def get(self, key: str) -> CacheResult[Any]:
        """Read ``key`` without loading: ``CacheResult(value, "l1"|"l2")``, or ``found=False``
        with source ``"miss"`` (or ``"bypass"`` when Redis is unavailable)."""
        full = self._key(key)
        start = self.coherence.epoch
        hit = self._from_l1(full)
        if hit is not None:
            return CacheResult(hit.value, "l1")
        if self.l2 is None:
            self.stats.incr("misses")
            return CacheResult(None, "miss", found=False)
        entry = await self._from_l2(full, start)
        if entry is not None:
            return CacheResult(entry.value, "l2")
        source: Source = "bypass" if self._guard.failed else "miss"
        self.stats.incr(_COUNTER[source])
        return CacheResult(None, source, found=False)

    async def get_or_load(self, key: str, loader: Callable[[], Awaitable[T]], *, ttl: float | None = None,
                          tags: Tags = (), cache_none: bool = False) -> T:
        """The cached value of ``key``, or ``await loader()`` stored for ``ttl`` seconds with ``tags``."""
        return (await self.fetch(key, loader, ttl=ttl, tags=tags, cache_none=cache_none)).value

    async def fetch(self, key: str, loader: Callable[[], Awaitable[T]], *, ttl: float | None = None,
                    tags: Tags = (), cache_none: bool = False) -> CacheResult[T]:
        """Like :meth:`get_or_load` but returns a :class:`CacheResult` telling where the value came from.

        ``tags`` are the entry's tags (:meth:`invalidate_tags`), or a function of the
        loaded value that returns them.

        ``loader`` is a zero-argument coroutine function; concurrent misses for one key run
        it once. ``cache_none=False`` (default) does not store a None result, so the next
        read loads again; ``True`` caches "not found" answers too. Hits close to expiry may
        refresh early (XFetch): the caller then gets the fresh value.
        """
        if not callable(loader):
            raise TypeError(f"loader={loader!r} must be a zero-argument async function, e.g. lambda: load(pid)")
        ttl = self.default_ttl if ttl is None else self._ttl(ttl)
        full = self._key(key)
        start = self.coherence.epoch
        hit = self._from_l1(full)
        if hit is not None:
            # -log(random()) <= 37, so an entry further from expiry than 37 * delta * beta
            # cannot be due for XFetch: skip the random draw on most hits
            if (hit.l2_expires_at - time.time() <= 37.0 * hit.delta * self.xfetch_beta
                    and self._refresh_due(hit.delta, hit.l2_expires_at)):
                early = _Load(full, loader, ttl, tags, cache_none, start)
                value, _ = await self._flight.do("refresh:" + full, lambda: self._refresh(early, hit.value, hit.seq))
                return CacheResult(value, "l1")
            return CacheResult(hit.value, "l1")
        load = _Load(full, loader, ttl, tags, cache_none, start)
        # concurrent L1 misses share one L2 read, and on an L2 miss one load
        (value, source), shared = await self._flight.do(full, lambda: self._after_l1_miss(load))
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

    async def _after_l1_miss(self, load: _Load[T]) -> tuple[T, Source]:
        # ready(): after retry_interval an outage is probed here (and a closed cache refuses)
        if self.l2 is not None and (not self._guard.failed or await self._guard.ready()):
            entry, lease, contended, seq = await self._get_or_lease(load)
            if entry is not None:
                if self._refresh_due(entry.delta, entry.expires_at):
                    return await self._refresh(load, entry.value, entry.seq), "l2"
                return entry.value, "l2"
            if lease is not None or contended:
                self.stats.incr("misses")
                return await self._load(load, lease=lease, since=seq, follow=contended), "miss"
        source: Source = "bypass" if self.l2 is not None and self._guard.failed else "miss"
        self.stats.incr(_COUNTER[source])
        return await self._load(load), source

    async def _refresh(self, load: _Load[T], current: T, seq: int) -> T:
        """XFetch: reload ``current`` early if this process takes the lease (else another is at it)."""
        lease: tuple[str, str] | None = None
        if self.l2 is not None:
            leases = self.l2.leases
            lock_key, token = leases.key(load.full), leases.new_token()
            acquired = await self._guard.call(None, leases.acquire, lock_key, token)
            if acquired is None:
                self._guard.remember(lease=(lock_key, token))
            elif not acquired:
                return current
            else:
                lease = (lock_key, token)
        # the entry's own sequence: older than now, so the store is refused whenever it would be stale
        return await self._load(load, lease=lease, since=seq)

    async def _load(self, load: _Load[T], *, lease: tuple[str, str] | None = None, since: int = 0,
                    follow: bool = False) -> T:
        """Run the loader once across processes, then store.

        ``lease``: this caller holds the load lease (:meth:`_get_or_lease`); the store
        releases it in the same round trip. Without one the value goes to L1 only (if the
        coherence rules allow). ``since``: the invalidation sequence the load began at.
        ``follow``: another process holds the lease, so wait for its value (or take the
        lease when it lets go) before loading.
        """
        try:
            if follow and self.l2 is not None:  # only a miss follows
                lease, entry = await self._lead_or_follow(load)
                if entry is not None:
                    return entry.value  # type: ignore[no-any-return]  # the leader stored our T
            started = time.perf_counter()
            try:
                value = await load.loader()
            except BaseException:
                self.stats.incr("load_errors")
                raise
            delta = time.perf_counter() - started
            self.stats.incr("loads")
            self.stats.record_load(delta)
            if value is not None or load.cache_none:
                tags = validate_tags(load.tags(value) if callable(load.tags) else load.tags)
                stored = await self._store(load.full, value, load.ttl, tags, delta, since=since, release=lease,
                                           start=load.epoch)
                if stored is not None:
                    lease = None  # released (or refused) by the store's own script
            return value
        finally:
            if lease is not None:
                await asyncio.shield(self._release(*lease))

    async def _get_or_lease(self, load: _Load[Any]) -> tuple[L2Entry | None, tuple[str, str] | None, bool, int]:
        """One round trip on an L1 miss: ``(entry, None, False, 0)`` on an L2 hit, else
        ``(None, (lock_key, token), False, seq)`` with the load lease, or ``(None, None, True, seq)``
        when another process holds it; ``seq``: where the load begins. ``(None, None, False, 0)``:
        Redis failed, or the entry carries a tag this process is still invalidating."""
        assert self.l2 is not None
        lock_key, token = self.l2.leases.key(load.full), self.l2.leases.new_token()
        started = time.perf_counter()
        found = await self._guard.call(None, self.l2.read, load.full, token)
        if found is None:  # Redis failed: the lease may still be taken later, so release it on recovery
            self._guard.remember(lease=(lock_key, token))
            return None, None, False, 0
        data, leased, seq = found
        if data is not None:
            return await self._decode_l2(load.full, data, started, load.epoch, count=True), None, False, 0
        if leased:
            return None, (lock_key, token), False, seq
        return None, None, True, seq

    async def _lead_or_follow(self, load: _Load[Any]) -> tuple[tuple[str, str] | None, L2Entry | None]:
        """Take the lease on the key (``(lease, None)``), or wait for the process holding it:
        ``(None, its entry)``, or ``(None, None)`` after ``lock_wait`` (or on an outage): load yourself."""
        assert self.l2 is not None
        leases = self.l2.leases
        lock_key = leases.key(load.full)
        deadline = time.monotonic() + self.lock_wait
        delay = 0.0
        waited = False
        while not self._guard.failed:
            token = leases.new_token()
            acquired = await self._guard.call(None, leases.acquire, lock_key, token)
            if acquired is None:  # Redis failed: the SET may still run later, so release it on recovery
                self._guard.remember(lease=(lock_key, token))
                return None, None
            if acquired:  # filled between our miss and the lease?
                return (lock_key, token), await self._from_l2(load.full, load.epoch, count=False)
            if not waited:
                self.stats.incr("lock_waits")
                waited = True
            delay = min(max(delay * 1.5, 0.005), 0.05, deadline - time.monotonic())
            if delay <= 0:
                return None, None
            await asyncio.sleep(delay)
            entry = await self._from_l2(load.full, load.epoch, count=False)
            if entry is not None:
                return None, entry
        return None, None

    async def _release(self, lock_key: str, token: str) -> None:
        assert self.l2 is not None
        if await self._guard.call(None, self.l2.leases.release, lock_key, token) is None:
            self._guard.remember(lease=(lock_key, token))

    def _from_l1(self, full: str) -> L1Entry | None:
        """The L1 entry for ``full`` or None (always None while no invalidation bus is heard); counts the hit."""
        if self.l1 is None or not self.coherence.hearing:
            return None
        entry = self.l1.get_entry(full)
        if entry is not None:
            self.stats.counts["l1_hits"] += 1
        return entry

    async def _from_l2(self, full: str, start: int, *, count: bool = True) -> L2Entry | None:
        """The decoded, valid L2 entry for ``full`` or None (a miss, a bad value, or Redis down); fills L1."""
        assert self.l2 is not None
        started = time.perf_counter()
        data = await self._guard.call(None, self.l2.get_raw, full)
        if data is None:
            return None
        return await self._decode_l2(full, data, started, start, count=count)

    async def _decode_l2(self, full: str, data: bytes, started: float, start: int, *,
                         count: bool) -> L2Entry | None:
        """Decode what L2 held for ``full`` and fill L1 (if no invalidation overtook the read);
        None if it does not decode (the entry is deleted) or carries a tag still being invalidated."""
        assert self.l2 is not None
        try:
            entry = self.l2.decode(data)
        except SerializationError as exc:
            self.stats.error("serialization")
            logger.warning("cache %r: dropping undecodable entry %s: %s", self.namespace, full, exc)
            await self._guard.call(0, self.l2.unlink, full)
            return None
        stamp = data.find(b"\n") + 1 if data[:1].isdigit() else 0  # the sequence-and-tags line
        names = (full, *entry.tags)
        digest: str | None = None
        if self.coherence.overtaken(start, names):  # rare: an invalidation arrived during the read
            digest = value_digest(data[stamp:])  # ... a set's own message, for the value read?
            if self.coherence.overtaken(start, names, digest=digest):
                return None  # invalidated while the read was under way (or still being invalidated): load instead
        if count:
            self.stats.record_l2(time.perf_counter() - started)
            self.stats.counts["l2_hits"] += 1
        if self.l1 is not None and self.coherence.fresh_since(start, names, digest=digest):
            ttl = min(self.l1_ttl, entry.time_to_expire())
            if ttl > 0:
                self.l1.set(full, entry.value, ttl, l2_expires_at=entry.expires_at, delta=entry.delta,
                            size=len(data) - stamp, tags=entry.tags, seq=entry.seq)
        return entry

    # writes ------------------------------------------------------------------------------
    async def set(self, key: str, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Store ``value`` in both levels for ``ttl`` seconds; other processes drop their L1 copy."""
        full = self._key(key)
        self.coherence.invalidated([full])  # a load of the old value in flight here must not fill L1 after this
        written: dict[str, bytes] = {}
        stored = await self._store(full, value, self._ttl(ttl), validate_tags(tags), start=self.coherence.epoch,
                                   unconditional=True, written=written)
        self.stats.incr("sets")
        if stored:
            # with the digest of what it wrote: a reader this message overtakes, holding that value, serves it
            await self._relay.publish({"keys": [full], "written": {full: value_digest(written[full])}})

    async def _store(self, full: str, value: Any, ttl: float, tags: list[str], delta: float = 0.0, *,
                     start: int, since: int = 0, release: tuple[str, str] | None = None,
                     unconditional: bool = False, written: dict[str, bytes] | None = None) -> bool | None:
        """Put the value in L2 (releasing the load lease ``release``) and in L1.

        Returns True if Redis stored it, False if Redis refused it (an invalidation or a
        delete since the load began), None if it was not sent (no lease, or Redis down).
        L1 takes it unless Redis refused it or an invalidation overtook the load.
        """
        data: bytes | None = None
        stored: bool | None = None
        if self.l2 is not None and (release is not None or unconditional):
            data = self.l2.encode(value, ttl, delta)
            if written is not None:
                written[full] = data
            stored = await self._guard.call(None, self.l2.store, full, value, ttl, tags=tags, delta=delta,
                                            encoded=data, since=None if unconditional else since, release=release)
            if stored is False:
                self.stats.incr("stores_refused")
        if self.l1 is not None and stored is not False and self.coherence.fresh_since(start, (full, *tags)):
            size: int | None = None
            if self.l1.max_bytes is not None and self.l2 is not None:
                try:  # its length sizes the L1 entry, the bytes Redis holds (or would)
                    size = len(data if data is not None else self.l2.encode(value, ttl, delta))
                except Exception:
                    size = None
            self.l1.set(full, value, min(self.l1_ttl, ttl), l2_expires_at=time.time() + ttl, delta=delta,
                        size=size, tags=tags, seq=since)
        return stored

    async def delete(self, key: str) -> bool:
        """Delete ``key`` from both levels and from every other process's L1; True if it existed anywhere."""
        return bool(await self.delete_many([key]))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys (one round trip); returns how many existed in L2 (or L1 without Redis).

        A load of one of them in flight (here or in another process) cannot store what it
        read before: the delete takes its lease.
        """
        full = [self._key(k) for k in keys]
        if not full:
            return 0
        self.stats.incr("deletes", len(full))
        self.coherence.invalidated(full)
        local = self.l1.delete_many(full) if self.l1 is not None else 0
        if self.l2 is None:
            return local
        existed = await self._guard.call(None, self.l2.unlink, *full)
        if existed is None:
            self._guard.remember(keys=full)
            return local
        await self._relay.publish({"keys": full})
        return max(existed, local)

    async def invalidate_tags(self, *tags: str) -> int:
        """Invalidate every entry carrying any of ``tags``, in every process; returns how many
        L1 entries this process dropped.

        In Redis the tags get a new version (O(tags)): their entries become unreadable at
        once and expire by their TTL (nothing lists them), and a load that began before
        cannot store. Other processes drop their L1 copies on the pub/sub message. With
        Redis down the invalidation is queued and replayed when it returns.
        """
        if not tags:
            raise ValueError("invalidate_tags() needs at least one tag, e.g. invalidate_tags('product:42')")
        checked = validate_tags(tags)
        self.coherence.invalidated(checked)
        dropped = self.l1.delete_tags(checked) if self.l1 is not None else 0
        if self.l2 is None:
            return dropped
        if await self._guard.call(None, self.l2.invalidate_tags, checked) is None:
            self._guard.remember(tags=checked)
            return dropped
        await self._relay.publish({"tags": checked})
        return dropped

    def receive_invalidation(self, tags: Iterable[str]) -> asyncio.Task[None] | None:
        """Apply an invalidation another process announced on a bus other than Redis (e.g.
        PostgreSQL ``NOTIFY``: :mod:`perf.cache.pg_invalidation`).

        The tags leave L1 before this returns. They are invalidated in Redis too, since the
        writer may not have reached it (a task, returned; queued for replay if Redis is down
        here); until Redis confirms, entries carrying them are not read from Redis.
        """
        return self._relay.receive(tags)

    def bus_state(self, name: str, connected: bool, *, resumed: bool = True) -> None:
        """Tell the cache that invalidation bus ``name`` (e.g. ``"postgres"``) is (dis)connected.

        While no bus is connected L1 is neither read nor filled; losing the last bus, or a
        bus coming back after a gap (``resumed``), clears L1 (see :mod:`perf.cache.coherence`).
        """
        self._relay.bus_state(name, connected, resumed=resumed)

    async def bump_version(self) -> int:
        """Invalidate the whole namespace at once by incrementing its version (O(1), no scan)."""
        self.coherence.cleared()
        if self.l1 is not None:
            self.l1.clear()
        if self.l2 is None:
            return 0
        version = await self._guard.call(None, self.l2.bump_version)
        if version is None:
            self._guard.remember(bump=True)
            return self.l2.version
        await self._relay.publish({"version": version})
        return version

    async def clear(self, pattern: str = "*") -> int:
        """Delete L2 entries matching the glob ``pattern`` with SCAN + UNLINK, and clear L1 everywhere."""
        self.coherence.cleared()
        if self.l1 is not None:
            self.l1.clear()
        if self.l2 is None:
            return 0
        deleted = await self._guard.call(None, self.l2.clear, pattern)
        if deleted is None:
            self._guard.remember(bump=True)  # cannot scan now; a new version hides every entry
            return 0
        await self._relay.publish({"version": self.l2.version})  # tells everyone to clear L1
        return deleted

    # helpers -----------------------------------------------------------------------------
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


@dataclass(frozen=True, slots=True)
class _Load(Generic[T]):
    """One read that may load: the key, how to load and store, and the coherence epoch it began at."""

    full: str
    loader: Callable[[], Awaitable[T]]
    ttl: float
    tags: Tags
    cache_none: bool
    epoch: int
