"""A correct, fast async connection pool (generic over the pooled resource).

* Waiting never holds a lock: a releaser hands its connection straight to the first
  waiter's future (fair FIFO), so one slow caller delays nobody else.
* ``release`` does its round trips (rollback, reset) under :func:`asyncio.shield`: a
  cancelled caller still returns or discards the connection, never leaks it.
* Releasing a clean connection costs no round trip; one left inside a transaction is
  rolled back (like psycopg_pool); a broken one is discarded and its slot reused.
* Idle timeout and max lifetime (with jitter) are enforced by a background task and at
  acquire time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from perf.pool.adapter import ConnectionAdapter
from perf.pool.errors import PoolClosed, PoolConnectError, PoolTimeout, PoolTooManyWaiters
from perf.pool.handles import AcquireContext, Holder
from perf.pool.lifecycle import PoolLifecycle
from perf.pool.options import check_number, validate_options
from perf.pool.stats import PoolCounters, PoolStats, snapshot

if TYPE_CHECKING:
    from perf.pool.handles import CloseReport

C = TypeVar("C")
log = logging.getLogger(__name__)
_SLOT = object()  # handed to a waiter instead of a connection: "a slot is free, open one"
_UNSET: Any = object()


class Pool(PoolLifecycle[C]):
    """An async pool of connections opened by ``adapter`` (see :func:`create_pool`).

    ``min_size``..``max_size`` connections; ``timeout`` bounds an acquire (seconds, None =
    wait forever); ``max_waiting`` rejects an acquire at once when that many callers
    already queue; ``idle_timeout`` closes connections idle that long (down to
    ``min_size``); ``max_lifetime`` replaces connections that old, each limit shortened
    by up to ``jitter`` (a fraction) so they do not expire together; ``health_check``
    runs ``adapter.check`` on every acquire; ``reset`` (async, takes the connection) runs
    on every release; ``maintenance_interval`` is the background sweep period.
    """

    def __init__(self, adapter: ConnectionAdapter[C], *, min_size: int = 1, max_size: int = 10,
                 timeout: float | None = 30.0, max_waiting: int | None = None,
                 idle_timeout: float | None = 300.0, max_lifetime: float | None = 3600.0,
                 jitter: float = 0.1, health_check: bool = False,
                 reset: Callable[[C], Awaitable[None]] | None = None, reset_timeout: float = 5.0,
                 maintenance_interval: float | None = None) -> None:
        validate_options(min_size=min_size, max_size=max_size, timeout=timeout, max_waiting=max_waiting,
                         idle_timeout=idle_timeout, max_lifetime=max_lifetime, jitter=jitter,
                         reset=reset, reset_timeout=reset_timeout, maintenance_interval=maintenance_interval)
        self._adapter = adapter
        self._min_size, self._max_size = min_size, max_size
        self._timeout, self._max_waiting = timeout, max_waiting
        self._idle_timeout, self._max_lifetime, self._jitter = idle_timeout, max_lifetime, jitter
        self._health_check, self._reset, self._reset_timeout = health_check, reset, reset_timeout
        limits = [x for x in (idle_timeout, max_lifetime) if x]
        self._interval = maintenance_interval or min(max(min(limits, default=60.0) / 4, 0.05), 30.0)
        self._idle: deque[Holder[C]] = deque()
        self._in_use: dict[int, Holder[C]] = {}
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._size = 0
        self._state = "new"
        self._counters = PoolCounters()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._all_returned: asyncio.Future[None] | None = None
        self._closer: asyncio.Task[CloseReport] | None = None

    # -- acquire -------------------------------------------------------------------------

    def acquire(self, *, timeout: float | None = _UNSET) -> AcquireContext[C]:
        """Borrow a connection: ``conn = await pool.acquire()`` or ``async with pool.acquire() as conn``.

        ``timeout`` (seconds) overrides the pool's; raises :class:`PoolTimeout`,
        :class:`PoolTooManyWaiters`, :class:`PoolClosed` or :class:`PoolConnectError`.
        """
        if timeout is not _UNSET:
            check_number("timeout", timeout, minimum=0, allow_none=True, hint="pass seconds or None")
        return AcquireContext(self, self._timeout if timeout is _UNSET else timeout)

    async def _acquire(self, timeout: float | None) -> C:
        if self._state != "open":
            if self._state == "new":
                raise PoolClosed("the pool is not open yet: use `await create_pool(...)` or `async with`")
            raise PoolClosed("this pool is closed; create a new one with create_pool(...)")
        loop = asyncio.get_running_loop()
        started = loop.time()
        if not self._waiters and not self._health_check:
            holder = self._pop_idle(started)
            if holder is not None:  # the fast path: no await, no bookkeeping beyond counters
                holder.acquired_at = started
                holder.owner = asyncio.current_task()
                self._counters.acquired += 1
                self._counters.immediate += 1
                return holder.conn
        deadline = None if timeout is None else started + timeout
        while True:
            created_before = self._counters.created
            holder = await self._get_holder(loop, deadline, timeout)
            if self._health_check:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._adapter.check(holder.conn)
                except (Exception, asyncio.CancelledError) as exc:
                    self._counters.lost += 1
                    self._discard(holder)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    if isinstance(exc, TimeoutError) and deadline is not None and loop.time() >= deadline:
                        self._counters.acquire_timeouts += 1
                        raise PoolTimeout(f"acquire timed out after {timeout}s (health check)") from None
                    if self._counters.created != created_before:  # even a new connection fails: give up
                        raise PoolConnectError(f"a new connection failed its health check: {exc!r}") from exc
                    continue
            now = loop.time()
            holder.acquired_at = now
            holder.owner = asyncio.current_task()
            self._counters.acquired += 1
            self._counters.record_wait(now - started)
            return holder.conn

    async def _get_holder(self, loop: asyncio.AbstractEventLoop, deadline: float | None,
                          timeout: float | None) -> Holder[C]:
        if not self._waiters:
            holder = self._pop_idle(loop.time())
            if holder is not None:
                return holder
            if self._size < self._max_size:
                self._size += 1
                return await self._open_reserved(deadline, timeout)
        if self._max_waiting is not None and len(self._waiters) >= self._max_waiting:
            self._counters.rejected += 1
            raise PoolTooManyWaiters(f"{len(self._waiters)} callers already wait for a connection "
                                     f"(max_waiting={self._max_waiting}); shed load or raise max_size")
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                got = await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._hand_back(fut.result())  # handed over as we were cancelled: give it on
            else:
                fut.cancel()
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            if isinstance(exc, TimeoutError):
                self._counters.acquire_timeouts += 1
                raise PoolTimeout(f"no connection free within timeout={timeout}s (max_size={self._max_size}, "
                                  f"{len(self._waiters)} still waiting); raise max_size or timeout, "
                                  "or hold connections for less time") from None
            raise
        if got is _SLOT:
            return await self._open_reserved(deadline, timeout)
        return got

    def _pop_idle(self, now: float) -> Holder[C] | None:
        while self._idle:
            holder = self._idle.pop()  # LIFO: the warmest; the coldest age out at the far end
            reason = holder.unusable(now, broken=self._adapter.is_broken(holder.conn),
                                     may_shrink=self._size > self._min_size)
            if reason is None:
                self._in_use[id(holder.conn)] = holder
                return holder
            self._count(reason)
            self._discard(holder, replace=False)
        return None

    def _count(self, counter: str) -> None:
        setattr(self._counters, counter, getattr(self._counters, counter) + 1)

    def _reserve(self, count: int) -> range:
        count = max(0, min(count, self._max_size - self._size))
        self._size += count
        return range(count)

    async def _open_reserved(self, deadline: float | None, timeout: float | None = None) -> Holder[C]:
        """Open a connection into a slot already counted in ``_size``; free the slot on failure."""
        try:
            async with asyncio.timeout_at(deadline):
                conn = await self._adapter.connect()
        except BaseException as exc:
            self._slot_freed()
            if isinstance(exc, TimeoutError) and deadline is not None:
                self._counters.acquire_timeouts += 1
                raise PoolTimeout(f"opening a connection took longer than timeout={timeout}s") from None
            if isinstance(exc, Exception):
                self._counters.connect_errors += 1
                raise PoolConnectError(f"could not open a connection: {exc}") from exc
            raise
        self._counters.created += 1
        now = asyncio.get_running_loop().time()
        holder = Holder(conn, now, self._max_lifetime, self._idle_timeout, self._jitter)
        self._in_use[id(conn)] = holder
        return holder

    # -- release -------------------------------------------------------------------------

    async def release(self, conn: C) -> None:
        """Give ``conn`` back; rolls back a transaction left open, discards a broken connection.

        Safe under cancellation: the round trips run shielded, so the connection is
        returned or discarded even if the caller is cancelled meanwhile.
        """
        holder = self._in_use.get(id(conn))
        if holder is None or holder.conn is not conn or holder.releasing:
            if self._state in ("closing", "closed"):
                return  # close() already terminated it
            raise ValueError(f"release(conn): {conn!r} is not borrowed from this pool "
                             "(released twice, or acquired elsewhere)")
        adapter = self._adapter
        if (self._reset is None and not adapter.is_broken(conn) and not adapter.in_transaction(conn)
                and (holder.expires_at is None or asyncio.get_running_loop().time() < holder.expires_at)):
            self._put_back(holder)  # nothing to await: cannot be interrupted
            return
        holder.releasing = True
        await asyncio.shield(self._spawn(self._release_slow(holder)))

    async def _release_slow(self, holder: Holder[C]) -> None:
        conn, adapter = holder.conn, self._adapter
        if adapter.is_broken(conn):
            self._counters.lost += 1
            self._discard(holder)
            return
        try:
            async with asyncio.timeout(self._reset_timeout):
                if adapter.in_transaction(conn):
                    await adapter.rollback(conn)
                    self._counters.rolled_back += 1
                if self._reset is not None:
                    await self._reset(conn)
        except Exception as exc:
            log.info("discarding %s: cleanup on release failed: %r", adapter.describe(conn), exc)
            self._counters.lost += 1
            self._discard(holder, graceful=False)
            return
        if holder.expires_at is not None and asyncio.get_running_loop().time() >= holder.expires_at:
            self._counters.expired_lifetime += 1
            self._discard(holder)
            return
        holder.releasing = False
        self._put_back(holder)

    def _put_back(self, holder: Holder[C]) -> None:
        if holder.gone:
            return
        self._in_use.pop(id(holder.conn), None)
        holder.owner = None
        if self._state != "open":
            self._discard(holder, replace=False)
            return
        holder.idle_since = asyncio.get_running_loop().time()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                self._in_use[id(holder.conn)] = holder
                fut.set_result(holder)
                return
        self._idle.append(holder)

    def _hand_back(self, got: Any) -> None:
        if got is _SLOT:
            self._slot_freed()
        else:
            self._put_back(got)

    def _discard(self, holder: Holder[C], *, replace: bool = True, graceful: bool = True) -> None:
        """Close ``holder``'s connection in the background and reuse its slot."""
        if holder.gone:
            return
        holder.gone = True
        self._in_use.pop(id(holder.conn), None)
        if graceful and not self._adapter.is_broken(holder.conn):
            self._spawn(self._close_conn(holder.conn))
        else:
            self._adapter.terminate(holder.conn)
            self._counters.closed += 1
        self._slot_freed()
        if replace:
            self._replenish()

    def _slot_freed(self) -> None:
        while self._waiters and self._state == "open":
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(_SLOT)  # the waiter opens the replacement itself
                return
        self._size -= 1
        if not self._in_use and self._all_returned is not None and not self._all_returned.done():
            self._all_returned.set_result(None)

    async def _close_conn(self, conn: C) -> None:
        try:
            await asyncio.wait_for(self._adapter.close(conn), self._reset_timeout)
        except (Exception, asyncio.CancelledError):
            self._adapter.terminate(conn)
        self._counters.closed += 1

    # -- introspection -------------------------------------------------------------------

    def stats(self) -> PoolStats:
        """A snapshot: size, idle, in use, waiting, wait percentiles and lifetime counters."""
        return snapshot(self._counters, min_size=self._min_size, max_size=self._max_size, size=self._size,
                        idle=len(self._idle), in_use=len(self._in_use), waiting=len(self._waiters))

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`terminate` ran."""
        return self._state in ("closing", "closed")

    def __repr__(self) -> str:
        return (f"<Pool {self._state} size={self._size} idle={len(self._idle)} in_use={len(self._in_use)} "
                f"waiting={len(self._waiters)} max_size={self._max_size}>")
