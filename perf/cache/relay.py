"""What one cache tells the other processes, and what it does with what they tell it.

:class:`InvalidationRelay` is the cross-process half of a
:class:`~perf.cache.multilevel.MultiLevelCache`, which owns one and calls it:

* **Out**: the cache's writes are announced on the namespace's Redis channel
  (:meth:`~InvalidationRelay.publish`, through the cache's guard; queued for replay if Redis
  fails), and what Redis missed while down is replayed on recovery (:meth:`~InvalidationRelay.replay`).
* **In**: others' messages, from Redis pub/sub (:class:`~perf.cache.invalidation.InvalidationBus`)
  or from PostgreSQL ``NOTIFY`` (:meth:`~InvalidationRelay.receive`, for
  :mod:`perf.cache.pg_invalidation`), drop the L1 copies they name and are recorded in the
  cache's :class:`~perf.cache.coherence.L1Coherence`; a tag received from PostgreSQL is
  invalidated in Redis too, and entries carrying it are not read from Redis until that is done.
* **Which buses are heard** (:meth:`~InvalidationRelay.bus_state`): Redis counts as one while
  the relay is subscribed *and* the guard says Redis answers; losing the last bus, or a bus
  coming back after a gap, clears L1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis

from perf.cache.coherence import L1Coherence
from perf.cache.guard import Missed, RedisGuard
from perf.cache.invalidation import InvalidationBus
from perf.cache.lru import LRUCache
from perf.cache.redis_cache import RedisCache, no_wait_retry, validate_tags
from perf.cache.stats import CacheStats

logger = logging.getLogger(__name__)


class InvalidationRelay:
    """Sends one cache's invalidations to the other processes and applies theirs to its L1.

    ``l1`` / ``coherence`` / ``stats`` / ``guard``: the cache's own (its L1 may be None).
    ``l2``: the cache's Redis level, or None for a cache alone in its process (then only
    :meth:`receive` and :meth:`bus_state` do anything); with it, ``redis_url`` is where the
    relay subscribes, waiting ``connect_timeout`` seconds at most for a connection.
    """

    def __init__(self, l1: LRUCache | None, coherence: L1Coherence, *, stats: CacheStats, guard: RedisGuard,
                 l2: RedisCache | None = None, redis_url: str | None = None,
                 connect_timeout: float = 0.25) -> None:
        if (l2 is None) != (redis_url is None):
            raise ValueError(f"l2={l2!r} and redis_url={redis_url!r} go together: pass both (Redis) or neither")
        self.l1 = l1
        self.coherence = coherence
        self.stats = stats
        self.l2 = l2
        self._guard = guard
        self._subscribed = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._bus: InvalidationBus | None = None
        self._client: redis.Redis | None = None
        if l2 is not None and redis_url is not None:
            # the subscriber blocks on reads: no socket timeout there, only on connect
            self._client = redis.from_url(redis_url, socket_connect_timeout=connect_timeout,
                                          retry=no_wait_retry(), health_check_interval=0)
            self._bus = InvalidationBus(self._client, l2.channel, on_message=self._on_message,
                                        on_connect=self._on_connect, on_error=self._on_error)
            coherence.bus("redis", False)  # until subscribed and Redis answers

    # lifecycle ---------------------------------------------------------------------------
    async def start(self, timeout: float) -> bool:
        """Subscribe to the channel, waiting up to ``timeout`` seconds; True if subscribed."""
        assert self._bus is not None
        self._bus.start()
        return await self._bus.wait_connected(timeout)

    async def finish(self, timeout: float) -> None:
        """Receive nothing more into Redis; wait up to ``timeout`` seconds for the invalidations
        received from another bus that are still on their way to Redis."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self, timeout: float) -> None:
        """Stop the subscriber (waiting up to ``timeout`` seconds) and close its Redis client."""
        if self._bus is not None:
            try:
                await asyncio.wait_for(self._bus.close(), timeout)
            except TimeoutError:
                logger.warning("cache %r: the invalidation subscriber did not stop within %ss",
                               self._guard.name, timeout)
        if self._client is not None:
            await self._client.aclose()

    # out ---------------------------------------------------------------------------------
    async def publish(self, message: dict[str, Any]) -> None:
        """Tell the other processes to drop ``keys`` or ``tags`` (or everything, for a new ``version``);
        if Redis fails, the invalidation is queued and replayed on recovery."""
        assert self.l2 is not None and self._bus is not None
        if await self._guard.call(None, self.l2.publish, self._bus.encode(message)) is None:
            self._guard.remember(keys=message.get("keys", ()), tags=message.get("tags", ()),
                                 bump="version" in message)
        else:
            self.stats.incr("invalidations_sent")

    async def replay(self, missed: Missed) -> None:
        """Redis is back: catch up on the version, then send what it missed (raises on failure)."""
        assert self.l2 is not None and self._bus is not None
        await self.l2.load_version()
        messages: list[dict[str, Any]] = []
        if missed.bump:
            messages.append({"version": await self.l2.bump_version()})
        if missed.tags:
            await self.l2.invalidate_tags(missed.tags)
            messages.append({"tags": sorted(missed.tags)})
        if missed.keys:
            keys = list(missed.keys)
            await self.l2.unlink(*keys)
            messages.append({"keys": keys})
        for lock_key, token in missed.leases.items():
            await self.l2.leases.release(lock_key, token)
        for message in messages:
            await self.l2.publish(self._bus.encode(message))
            self.stats.incr("invalidations_sent")

    # in ----------------------------------------------------------------------------------
    def receive(self, tags: Iterable[str]) -> asyncio.Task[None] | None:
        """Apply ``tags`` announced on a bus other than Redis: see
        :meth:`~perf.cache.multilevel.MultiLevelCache.receive_invalidation`."""
        checked = validate_tags(tags)
        self.stats.incr("invalidations_received")
        self.coherence.invalidated(checked)
        if self.l1 is not None:
            self.l1.delete_tags(checked)
        if self.l2 is None or not checked or self._closed:
            return None
        self.coherence.hold(checked)
        task = asyncio.get_running_loop().create_task(self._invalidate_received(checked))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _invalidate_received(self, tags: list[str]) -> None:
        assert self.l2 is not None
        try:
            if await self._guard.call(None, self.l2.invalidate_tags, tags) is None:
                self._guard.remember(tags=tags)  # replayed before this process reads Redis again
        except Exception:  # closed meanwhile, or fail_open=False: queue it like an outage
            self._guard.remember(tags=tags)
        finally:
            # a read sent to Redis while this was under way may have run before it: not served
            self.coherence.invalidated(tags)
            self.coherence.release(tags)

    def _on_message(self, message: dict[str, Any]) -> None:
        self.stats.incr("invalidations_received")
        if "version" in message and self.l2 is not None:
            self.l2.version = int(message["version"])
            self.coherence.cleared()
            if self.l1 is not None:
                self.l1.clear()
        for field_name in ("keys", "tags"):
            names = message.get(field_name)
            if names:
                self.coherence.invalidated(names, written=message.get("written") if field_name == "keys" else None)
                if self.l1 is not None:
                    (self.l1.delete_many if field_name == "keys" else self.l1.delete_tags)(names)

    # which buses are heard ---------------------------------------------------------------
    def bus_state(self, name: str, connected: bool, *, resumed: bool = True) -> None:
        """Record that bus ``name`` is (dis)connected; clears L1 when :meth:`L1Coherence.bus` says so."""
        if self.coherence.bus(name, connected, resumed=resumed) and self.l1 is not None:
            self.l1.clear()

    def redis_state(self, up: bool, *, resumed: bool = False) -> None:
        """Redis counts as a bus while this process is subscribed *and* its calls succeed: a
        process whose calls fail cannot tell whether the others' invalidations still arrive.
        Its calls recovering, still subscribed, missed nothing (``resumed=False``)."""
        self.bus_state("redis", up and self._subscribed, resumed=resumed)

    async def _on_connect(self, reconnected: bool) -> None:
        assert self.l2 is not None
        await self.l2.load_version()
        self._subscribed = True
        # a resubscription missed what was published meanwhile
        self.redis_state(not self._guard.failed, resumed=True)

    def _on_error(self, exc: BaseException) -> None:
        self.stats.error("pubsub")
        self._subscribed = False
        self.redis_state(False)
