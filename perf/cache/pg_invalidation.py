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
...     await bus.acknowledged(sent)   # every other worker has dropped its copies

PostgreSQL delivering a message is not the other process having *applied* it: its event loop
may not have read it yet when the writer answers, and a read it serves meanwhile is stale. So
each listener acknowledges what it applied (a ``NOTIFY`` back, on its listening connection),
and the writer waits for an acknowledgement from every process that was listening when it
wrote: PostgreSQL names them (``pg_stat_activity``: each listening connection carries
``application_name`` ``<channel>:<origin>``), in the same statement that sends the message.
A process that started listening later holds no copy to drop (its L1 began empty, or was
cleared when its connection came back); one that dies before it answers is waited for up to
``timeout`` (1 s).

The listening connection is watched: while it is down the cache is told (``bus_state``) and
stops trusting L1 unless Redis pub/sub is heard; when it returns, L1 is cleared (messages
sent meanwhile were lost). Cost: per write, one statement in its transaction (the message,
the list of listeners and the transaction's id) and one acknowledgement from each other
process: with n processes, n messages per write, each delivered to n listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Self

import asyncpg
import orjson

from perf.aio import cancel_and_wait
from perf.cache.multilevel import MultiLevelCache

logger = logging.getLogger(__name__)


def channel_for(namespace: str) -> str:
    """The ``LISTEN`` channel of a cache namespace: a fixed-length identifier (PostgreSQL
    truncates channel names past 63 bytes and namespaces may hold ``:`` and ``.``)."""
    return "perf_cache_" + hashlib.sha256(namespace.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Sent:
    """A message :meth:`PgInvalidationBus.notify` sent: its id and the processes (origins) that
    were listening when it was sent, whose acknowledgements :meth:`~PgInvalidationBus.acknowledged` awaits."""

    id: int
    peers: frozenset[str]
    #: The id of the transaction it was sent in (``pg_current_xact_id()``, selected in the same
    #: statement): a write cut off after its COMMIT asks PostgreSQL with it whether it committed.
    xid: int | None = None


class PgInvalidationBus:
    """Listens on ``channel`` (default :func:`channel_for` the cache's namespace) with one
    dedicated connection, applies every other process's message to ``cache`` and acknowledges it.

    ``reconnect_delay``: seconds between attempts while PostgreSQL is unreachable.
    """

    def __init__(self, database_url: str, cache: MultiLevelCache, *, channel: str | None = None,
                 reconnect_delay: float = 0.5, connect_timeout: float = 5.0) -> None:
        if not reconnect_delay > 0:
            raise ValueError(f"reconnect_delay={reconnect_delay!r} must be > 0 seconds (e.g. 0.5)")
        self.database_url = database_url
        self.cache = cache
        self.channel = channel or channel_for(cache.namespace)
        if len(self.channel) > 40:  # application_name keeps 63 bytes: "<channel>:<origin>" must fit whole
            raise ValueError(f"channel={self.channel!r} is {len(self.channel)} characters; at most 40")
        self.origin = uuid.uuid4().hex[:16]
        self.connected = asyncio.Event()
        self._reconnect_delay = reconnect_delay
        self._connect_timeout = connect_timeout
        self._ids = itertools.count(1)
        self._acked: dict[int, set[str]] = {}  # own message id -> peers that applied it (insertion-ordered)
        self._waiting: dict[int, tuple[frozenset[str], asyncio.Future[None]]] = {}
        self._to_ack: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event = asyncio.Event()

    @property
    def application_name(self) -> str:
        """How this process's listening connection names itself in ``pg_stat_activity``."""
        return f"{self.channel}:{self.origin}"

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
        await cancel_and_wait(task)
        for _peers, waiter in self._waiting.values():
            waiter.cancel()
        self._waiting.clear()

    async def notify(self, conn: asyncpg.Connection, tags: list[str]) -> Sent:
        """Send an invalidation of ``tags`` on ``conn``, inside the caller's transaction (it is
        delivered if and only if that commits). Returns what :meth:`acknowledged` waits for."""
        sent = next(self._ids)
        payload = orjson.dumps({"tags": tags, "origin": self.origin, "id": sent}).decode()
        row = await conn.fetchrow(
            "SELECT array(SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $3) AS names,"
            " pg_current_xact_id() AS xid FROM pg_notify($1, $2)", self.channel, payload, f"{self.channel}:%")
        prefix = len(self.channel) + 1
        return Sent(sent, frozenset(name[prefix:] for name in row["names"]) - {self.origin}, int(row["xid"]))

    async def acknowledged(self, sent: Sent, *, timeout: float = 1.0) -> bool:
        """Wait until every process listening when ``sent`` was sent has applied it (dropped its
        copies); False after ``timeout`` seconds (a peer died or froze) or when not listening."""
        try:
            if sent.peers <= self._acked.get(sent.id, set()):
                return True
            if not self.connected.is_set():
                return False
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[sent.id] = (sent.peers, waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
                return True
            except TimeoutError:
                missing = sorted(sent.peers - self._acked.get(sent.id, set()))
                logger.warning("cache %r: no acknowledgement of invalidation %d from %s within %ss",
                               self.cache.namespace, sent.id, missing, timeout)
                return False
            finally:
                self._waiting.pop(sent.id, None)
        finally:
            self._acked.pop(sent.id, None)

    # the listener ------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            conn: asyncpg.Connection | None = None
            sender: asyncio.Task[None] | None = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=self._connect_timeout,
                                             server_settings={"application_name": self.application_name})
                self._lost.clear()
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(self.channel, self._on_notify)
                sender = asyncio.get_running_loop().create_task(self._send_acks(conn))
                sender.add_done_callback(lambda _task: self._lost.set())  # it only ends when conn fails
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
                await cancel_and_wait(sender)
                self._to_ack = asyncio.Queue()  # the writers of what was not acknowledged time out
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(self._reconnect_delay)

    async def _send_acks(self, conn: asyncpg.Connection) -> None:
        """Acknowledge applied messages on the listening connection, in batches (one statement each)."""
        while True:
            batch = [await self._to_ack.get()]
            while not self._to_ack.empty() and len(batch) < 100:  # ~40 bytes each; a payload holds 8000
                batch.append(self._to_ack.get_nowait())
            payload = orjson.dumps({"acks": batch, "from": self.origin}).decode()
            await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if "acks" in message:
                self._on_acks(str(message["from"]), message["acks"])
                return
            tags = [str(t) for t in message["tags"]]
            origin, sent = str(message["origin"]), int(message["id"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            logger.warning("cache %r: ignoring a malformed message on %s", self.cache.namespace, self.channel)
            return
        if origin == self.origin:  # our own write: applied already
            return
        self.cache.receive_invalidation(tags)  # L1 dropped, Redis reads held: now the writer may answer
        self._to_ack.put_nowait((origin, sent))

    def _on_acks(self, peer: str, acks: list[list[Any]]) -> None:
        for origin, sent in acks:
            if origin != self.origin:
                continue
            acked = self._acked.setdefault(sent, set())
            acked.add(peer)
            if len(self._acked) > 10_000:  # acknowledgements nobody waits for any more: forget the oldest
                del self._acked[next(iter(self._acked))]
            waiting = self._waiting.get(sent)
            if waiting is not None and waiting[0] <= acked and not waiting[1].done():
                waiting[1].set_result(None)
