"""Invalidations that travel with the write: PostgreSQL ``NOTIFY`` in the write's transaction.

Redis pub/sub carries an invalidation only if the writer reaches Redis after its commit; a
writer whose Redis is down, frozen or out of connections cannot. PostgreSQL can: a write
calls :meth:`PgInvalidationBus.notify` inside its transaction, so the message exists if and
only if the write committed, and PostgreSQL delivers it (at commit) to every process that
``LISTEN``\\s on the channel, Redis up or down. Each process applies it with
:meth:`~perf.cache.multilevel.MultiLevelCache.receive_invalidation` (L1 at once, Redis too).

>>> async with PgInvalidationBus(database_url, cache) as bus:
...     async with conn.transaction():
...         await conn.execute("UPDATE products SET price = $1 WHERE id = $2", price, pid)
...         sent = await bus.notify(conn, [f"product:{pid}"])
...     await cache.invalidate_tags(f"product:{pid}")
...     if not cache.redis_available:
...         await bus.delivered(sent)   # this process heard its own message: so did the others

The listening connection is watched: while it is down the cache is told (``bus_state``) and
stops trusting L1 unless Redis pub/sub is heard; when it returns, L1 is cleared (messages
sent meanwhile were lost). Cost: one ``pg_notify`` per write transaction, and a message to
each listening process per write (notebook 05 and the README give the measured cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import uuid
from typing import Any, Self

import asyncpg
import orjson

from perf.cache.multilevel import MultiLevelCache

logger = logging.getLogger(__name__)


def channel_for(namespace: str) -> str:
    """The ``LISTEN`` channel of a cache namespace: a fixed-length identifier (PostgreSQL
    truncates channel names past 63 bytes and namespaces may hold ``:`` and ``.``)."""
    return "perf_cache_" + hashlib.sha256(namespace.encode()).hexdigest()[:24]


class PgInvalidationBus:
    """Listens on ``channel`` (default :func:`channel_for` the cache's namespace) with one
    dedicated connection and applies every other process's message to ``cache``.

    ``reconnect_delay``: seconds between attempts while PostgreSQL is unreachable.
    """

    def __init__(self, database_url: str, cache: MultiLevelCache, *, channel: str | None = None,
                 reconnect_delay: float = 0.5, connect_timeout: float = 5.0) -> None:
        if not reconnect_delay > 0:
            raise ValueError(f"reconnect_delay={reconnect_delay!r} must be > 0 seconds (e.g. 0.5)")
        self.database_url = database_url
        self.cache = cache
        self.channel = channel or channel_for(cache.namespace)
        self.origin = uuid.uuid4().hex
        self.connected = asyncio.Event()
        self._reconnect_delay = reconnect_delay
        self._connect_timeout = connect_timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._heard: dict[int, None] = {}  # own ids received before anyone waited (insertion-ordered)
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event = asyncio.Event()

    async def start(self, *, timeout: float = 5.0) -> Self:
        """Start listening; waits up to ``timeout`` seconds for the first connection (idempotent)."""
        if self._task is None:
            self.cache.bus_state("postgres", False)
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pg-invalidation:{self.channel}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)
        return self

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for waiter in self._waiting.values():
            waiter.cancel()
        self._waiting.clear()

    async def notify(self, conn: asyncpg.Connection, tags: list[str]) -> int:
        """Send an invalidation of ``tags`` on ``conn``, inside the caller's transaction (it is
        delivered if and only if that commits). Returns an id for :meth:`delivered`."""
        sent = next(self._ids)
        payload = orjson.dumps({"tags": tags, "origin": self.origin, "id": sent}).decode()
        await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)
        return sent

    async def delivered(self, sent: int, *, timeout: float = 1.0) -> bool:
        """Wait until this process has received its own message ``sent`` (PostgreSQL delivers it
        to every listener at the same commit); False after ``timeout`` seconds or when not listening."""
        if sent in self._heard:
            del self._heard[sent]
            return True
        if not self.connected.is_set():
            return False
        waiter = self._waiting.setdefault(sent, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(sent, None)

    # the listener ------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=self._connect_timeout)
                self._lost.clear()
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(self.channel, self._on_notify)
                self.connected.set()
                self.cache.bus_state("postgres", True)
                if failures:
                    logger.warning("cache %r: listening on PostgreSQL again", self.cache.namespace)
                failures = 0
                await self._lost.wait()
                raise ConnectionError("the LISTEN connection closed")
            except Exception as exc:  # whatever it was, the bus is down: the cache must know, and we retry
                expected = isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError))
                if not failures:  # one line per outage, not one per attempt
                    logger.warning("cache %r: PostgreSQL invalidation listener down (%s: %s); retrying every %ss",
                                   self.cache.namespace, type(exc).__name__, exc, self._reconnect_delay,
                                   exc_info=not expected)
                failures += 1
            finally:
                self.connected.clear()
                self.cache.bus_state("postgres", False)
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(self._reconnect_delay)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            tags = [str(t) for t in message["tags"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            logger.warning("cache %r: ignoring a malformed invalidation on %s", self.cache.namespace, self.channel)
            return
        if message.get("origin") == self.origin:  # our own write: applied already; tell whoever waits
            waiter = self._waiting.get(message.get("id", 0))
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                self._heard[message.get("id", 0)] = None
                if len(self._heard) > 10_000:  # nobody asked about these: forget the oldest
                    del self._heard[next(iter(self._heard))]
            return
        self.cache.receive_invalidation(tags)
