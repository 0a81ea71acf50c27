"""A correct, fast async connection pool (generic over the pooled resource), whole in one file.

* Waiting never holds a lock: a releaser hands its connection straight to the first
  waiter's future (fair FIFO), so one slow caller delays nobody else.
* ``release`` does its round trips (rollback, reset) under :func:`asyncio.shield`: a
  cancelled caller still returns or discards the connection, never leaks it.
* A clean release costs no round trip; what else release does is the ``reset`` mode
  (see :class:`Pool`); a broken connection is discarded and its slot reused.
* Idle timeout and max lifetime (with jitter) are enforced by a background task and at
  acquire time; a spare connection that fails to open is retried by it.
* While connects fail (PostgreSQL down or restarting) an acquire retries until its timeout,
  and the pool logs one warning when the outage begins and one when it ends.

The slot bookkeeping (idle stack, borrowed map, waiters) is :class:`~perf.pool.slots.Slots`;
this file holds everything that awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from perf.aio import cancel_and_wait
from perf.logs import warn_once
from perf.pool.adapter import ConnectionAdapter
from perf.pool.errors import PoolClosed, PoolConnectError, PoolTimeout, PoolTooManyWaiters
from perf.pool.options import check_number, validate_options
from perf.pool.slots import Holder, Slot, Slots
from perf.pool.stats import PoolCounters, PoolStats, snapshot

C = TypeVar("C")
log = logging.getLogger(__name__)
ResetMode = Literal["none", "session", "always"]
_UNSET: Any = object()


@dataclass(frozen=True)
class CloseReport:
    """What :meth:`Pool.close` found: whether every borrower returned in time, and who did not."""

    graceful: bool
    still_held: tuple[str, ...]
    waited_seconds: float


class AcquireContext(Generic[C]):
    """``await pool.acquire()`` or ``async with pool.acquire() as conn``."""

    __slots__ = ("_pool", "_timeout", "_conn")

    def __init__(self, pool: Pool[C], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._conn: C | None = None

    def __await__(self) -> Generator[Any, None, C]:
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> C:
        self._conn = conn = await self._pool._acquire(self._timeout)
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class Pool(Generic[C]):
    """An async pool of connections opened by ``adapter`` (see :func:`~perf.pool.create_pool`).

    ``min_size``..``max_size`` connections; ``timeout`` bounds an acquire (seconds, None =
    wait forever); ``max_waiting`` rejects an acquire at once when that many callers
    already queue; ``idle_timeout`` closes connections idle that long (down to
    ``min_size``); ``max_lifetime`` replaces connections that old, each limit shortened
    by up to ``jitter`` (a fraction) so they do not expire together; ``health_check``
    runs ``adapter.check`` on every acquire; ``maintenance_interval`` is the background
    sweep period; ``reset_timeout`` bounds release's round trips.

    ``reset`` says what a returned connection is cleaned of before the next borrower
    (the table in notebook 03 is :func:`perf.pool.demo_reset.reset_guarantees`, run on the server):

    * ``"always"`` (default): an open transaction is rolled back and the session reset on
      every release, whatever ran: the next borrower finds the session a new connection
      has (parameters as opened, role and session authorization, no advisory locks, cursors,
      ``LISTEN``, temporary tables, SQL ``PREPARE``'d statements or sequence state), also
      after changes made inside server functions. One round trip per release
      (:meth:`~perf.pool.asyncpg_adapter.AsyncpgAdapter.reset_session`).
    * ``"session"``: the same reset, only after a statement whose *text* can change session
      state (``SET``/``RESET`` without ``LOCAL``, ``set_config``, ``pg_advisory_lock``,
      ``LISTEN``, ``DECLARE``, ``PREPARE``, ``CREATE TEMP``, ``DISCARD``); a release that
      sent none of those costs no round trip. Misses what the text does not show: a change
      made inside a server function (``SELECT f()`` where ``f`` runs ``SET``,
      ``set_config(..., false)``, takes an advisory lock, ``LISTEN``s or creates a temporary
      table), and sequence state (``currval``/``lastval`` after any ``nextval``, an
      ``INSERT`` into a ``serial`` column included). Right for code whose SQL you know.
    * ``"none"``: an open (or failed) transaction is rolled back, nothing else: all the
      session state above survives into the next borrow. Fastest; right when your code
      never changes session state.
    * an async callable ``reset(conn)``: your own cleanup, after the rollback, on every release.

    A reset that fails or times out discards the connection (its slot is reused).
    """

    def __init__(self, adapter: ConnectionAdapter[C], *, min_size: int = 1, max_size: int = 10,
                 timeout: float | None = 30.0, max_waiting: int | None = None,
                 idle_timeout: float | None = 300.0, max_lifetime: float | None = 3600.0,
                 jitter: float = 0.1, health_check: bool = False,
                 reset: ResetMode | Callable[[C], Awaitable[None]] = "always", reset_timeout: float = 5.0,
                 maintenance_interval: float | None = None) -> None:
        validate_options(min_size=min_size, max_size=max_size, timeout=timeout, max_waiting=max_waiting,
                         idle_timeout=idle_timeout, max_lifetime=max_lifetime, jitter=jitter,
                         reset=reset, reset_timeout=reset_timeout, maintenance_interval=maintenance_interval)
        self._adapter = adapter
        self._slots: Slots[C] = Slots(min_size, max_size)
        self._timeout, self._max_waiting = timeout, max_waiting
        self._idle_timeout, self._max_lifetime, self._jitter = idle_timeout, max_lifetime, jitter
        self._health_check, self._reset_timeout = health_check, reset_timeout
        self._reset_mode: str = reset if isinstance(reset, str) else "custom"
        self._reset_hook = None if isinstance(reset, str) else reset
        limits = [x for x in (idle_timeout, max_lifetime) if x]
        self._interval = maintenance_interval or min(max(min(limits, default=60.0) / 4, 0.05), 30.0)
        self._state = "new"
        self._loop: asyncio.AbstractEventLoop | None = None  # set by open(): the hot paths skip the lookup
        self._counters = PoolCounters()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._all_returned: asyncio.Future[None] | None = None
        self._closer: asyncio.Task[CloseReport] | None = None
        self._outage_since: float | None = None  # when connects began to fail (None: they work)
        self._outage_failures = 0

    # -- open and close --------------------------------------------------------------------

    async def open(self) -> Pool[C]:
        """Open ``min_size`` connections and start the maintenance task (idempotent)."""
        if self._state in ("closing", "closed"):
            raise PoolClosed("this pool is closed; create a new one with create_pool(...)")
        if self._state == "new":
            self._state = "open"
            self._loop = loop = asyncio.get_running_loop()
            self._maintenance = loop.create_task(self._maintain(), name="perf.pool maintenance")
            count = self._slots.reserve(self._slots.min_size)
            opened = await asyncio.gather(*(self._open_reserved(None) for _ in range(count)),
                                          return_exceptions=True)
            errors = [h for h in opened if isinstance(h, BaseException)]
            for holder in opened:
                if isinstance(holder, Holder):
                    self._put_back(holder)
            if errors:
                await self.close(timeout=0)
                raise errors[0]
        return self

    def __await__(self) -> Generator[Any, None, Pool[C]]:
        return self.open().__await__()

    async def __aenter__(self) -> Pool[C]:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, timeout: float = 10.0) -> CloseReport:
        """Stop lending; wait up to ``timeout`` s for borrowed connections, then terminate them.

        Returns a :class:`CloseReport`; connections still held at the deadline are named
        in it (and logged as a warning). Waiting acquirers fail with :class:`PoolClosed`.
        Calling it again (even concurrently) returns the same report; cancelling the
        caller does not interrupt the close.
        """
        check_number("timeout", timeout, minimum=0, allow_none=False, hint="pass seconds to wait for borrowers")
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._close(timeout))
        return await asyncio.shield(self._closer)

    async def _close(self, timeout: float) -> CloseReport:
        self._state = "closing"
        slots = self._slots
        loop = asyncio.get_running_loop()
        started = loop.time()
        await cancel_and_wait(self._maintenance)
        slots.fail_waiters(PoolClosed("the pool was closed while this acquire waited"))
        while slots.idle:
            self._discard(slots.idle.pop(), replace=False)
        still_held: tuple[str, ...] = ()
        if slots.in_use:
            self._all_returned = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_returned), timeout)
            except TimeoutError:
                now = loop.time()
                still_held = tuple(f"{self._adapter.describe(h.conn)} held by "
                                   f"{h.owner.get_name() if h.owner else 'no task'} "
                                   f"for {now - h.acquired_at:.1f}s" for h in slots.in_use.values())
                for holder in list(slots.in_use.values()):
                    slots.forget(holder)
                    holder.gone = True  # a release still running for it must not count it again
                    self._adapter.terminate(holder.conn)
                    self._counters.closed += 1
                    slots.size -= 1
                log.warning("pool closed with %d connection(s) still borrowed, terminated: %s",
                            len(still_held), "; ".join(still_held))
        await self._finish_background(loop.time() + max(started + timeout - loop.time(), self._reset_timeout))
        self._state = "closed"
        return CloseReport(graceful=not still_held, still_held=still_held, waited_seconds=loop.time() - started)

    async def _finish_background(self, deadline: float) -> None:
        """Wait until ``deadline`` for the pool's background tasks (closes, replacements, releases), then
        cancel what is left: each has its own timeout, but a driver that swallows a cancellation can
        still leave one waiting forever (CI, CPython 3.12: a close waited 180 s), and close() must return."""
        loop = asyncio.get_running_loop()
        while self._tasks:  # a task may spawn another (a release that discards spawns a close)
            pending = set(self._tasks)
            done, stuck = await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0.0))
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: each logs or counts its own failure
            if not stuck:
                continue
            for task in stuck:
                task.cancel()
            _, ignored = await asyncio.wait(stuck, timeout=1.0)
            for task in ignored:  # cancelled and still running: abandoned, named in the log
                self._tasks.discard(task)
            log.warning("pool close: %d background task(s) still running at the deadline were cancelled%s",
                        len(stuck), f"; {len(ignored)} ignored it and were abandoned: "
                        + ", ".join(repr(t.get_coro()) for t in ignored) if ignored else "")

    def terminate(self) -> None:
        """Close every connection at once, without waiting for borrowers (last resort)."""
        self._state = "closed"
        slots = self._slots
        for task in [self._maintenance, *self._tasks]:
            if task is not None:
                task.cancel()
        for holder in [*slots.idle, *slots.in_use.values()]:
            self._adapter.terminate(holder.conn)
        slots.idle.clear()
        slots.in_use.clear()
        slots.size = 0
        slots.fail_waiters(PoolClosed("the pool was terminated while this acquire waited"))

    # -- acquire ---------------------------------------------------------------------------

    def acquire(self, *, timeout: float | None = _UNSET) -> AcquireContext[C]:
        """Borrow a connection: ``conn = await pool.acquire()`` or ``async with pool.acquire() as conn``.

        ``timeout`` (seconds) overrides the pool's; raises :class:`PoolTimeout`,
        :class:`PoolTooManyWaiters`, :class:`PoolClosed` or :class:`PoolConnectError`.
        """
        if timeout is _UNSET:
            return AcquireContext(self, self._timeout)
        check_number("timeout", timeout, minimum=0, allow_none=True, hint="pass seconds or None")
        return AcquireContext(self, timeout)

    async def _acquire(self, timeout: float | None) -> C:
        if self._state != "open":
            if self._state == "new":
                raise PoolClosed("the pool is not open yet: use `await create_pool(...)` or `async with`")
            raise PoolClosed("this pool is closed; create a new one with create_pool(...)")
        loop = self._loop
        assert loop is not None  # set by open()
        started = loop.time()
        slots = self._slots
        if not slots.waiters and not self._health_check:
            holder = self._take_usable(started)
            if holder is not None:  # the fast path: no await, no bookkeeping beyond counters
                holder.acquired_at = started
                holder.owner = asyncio.current_task(loop)
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
            holder.owner = asyncio.current_task(loop)
            self._counters.acquired += 1
            self._counters.record_wait(now - started)
            return holder.conn

    async def _get_holder(self, loop: asyncio.AbstractEventLoop, deadline: float | None,
                          timeout: float | None) -> Holder[C]:
        slots = self._slots
        if not slots.waiters:
            holder = self._take_usable(loop.time())
            if holder is not None:
                return holder
            if slots.reserve(1):
                return await self._open_reserved(deadline, timeout)
        if self._max_waiting is not None and len(slots.waiters) >= self._max_waiting:
            self._counters.rejected += 1
            raise PoolTooManyWaiters(f"{len(slots.waiters)} callers already wait for a connection "
                                     f"(max_waiting={self._max_waiting}); shed load or raise max_size")
        fut = slots.wait(loop)
        try:
            async with asyncio.timeout_at(deadline):
                got = await fut
        except BaseException as exc:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._hand_on(fut.result())  # handed over as we were cancelled: give it on
            else:
                slots.stop_waiting(fut)
            if isinstance(exc, TimeoutError):
                self._counters.acquire_timeouts += 1
                raise PoolTimeout(f"no connection free within timeout={timeout}s (max_size={slots.max_size}, "
                                  f"{len(slots.waiters)} still waiting); raise max_size or timeout, "
                                  "or hold connections for less time") from None
            raise
        if isinstance(got, Slot):
            return await self._open_reserved(deadline, timeout)
        return got

    def _take_usable(self, now: float) -> Holder[C] | None:
        """An idle connection fit to lend, discarding the broken and expired ones met on the way."""
        slots, adapter = self._slots, self._adapter
        while (holder := slots.take_idle()) is not None:
            reason = holder.unusable(now, broken=adapter.is_broken(holder.conn), may_shrink=slots.may_shrink)
            if reason is None:
                return holder
            setattr(self._counters, reason, getattr(self._counters, reason) + 1)
            self._discard(holder, replace=False)
        return None

    async def _open_reserved(self, deadline: float | None, timeout: float | None = None) -> Holder[C]:
        """Open a connection into a slot already reserved; free the slot on failure.

        With a ``deadline`` (an acquire), a connect that fails because the server is
        unreachable or restarting (``adapter.is_unavailable``) is retried with backoff until
        the deadline: a restart shorter than the acquire timeout costs waiting, not an error.
        Not before the pool's first connection opened: a wrong address fails at once.
        """
        loop = asyncio.get_running_loop()
        pause = 0.05
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        conn = await self._adapter.connect()
                        break
                    except Exception as exc:
                        self._counters.connect_errors += 1
                        self._outage_began(exc)
                        # A pool that never opened a connection is misconfigured, not facing an outage: fail fast.
                        if (deadline is None or not self._counters.created or not self._adapter.is_unavailable(exc)
                                or loop.time() + pause >= deadline):
                            raise
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.5)
        except BaseException as exc:
            self._slot_freed()
            if isinstance(exc, TimeoutError) and deadline is not None and loop.time() >= deadline:
                self._counters.acquire_timeouts += 1
                raise PoolTimeout(f"opening a connection took longer than timeout={timeout}s") from None
            if isinstance(exc, Exception):
                raise PoolConnectError(f"could not open a connection: {exc}") from exc
            raise
        self._outage_ended()
        self._counters.created += 1
        holder = Holder(conn, loop.time(), self._max_lifetime, self._idle_timeout, self._jitter)
        self._slots.lend(holder)
        return holder

    def _outage_began(self, exc: Exception) -> None:
        """Log the first failed connect of an outage (one warning, not one per attempt)."""
        if self._outage_since is None:
            self._outage_since = asyncio.get_running_loop().time()
            self._outage_failures = 0
            # every pool on the server notices at once: the same line once per process, not once per pool
            warn_once(log, "cannot open connections (%s: %s); retrying quietly, one line when one opens",
                      type(exc).__name__, exc)
        self._outage_failures += 1

    def _outage_ended(self) -> None:
        if self._outage_since is not None:
            log.warning("connections open again after %.1fs (%d failed attempts)",
                        asyncio.get_running_loop().time() - self._outage_since, self._outage_failures)
            self._outage_since = None

    # -- release ---------------------------------------------------------------------------

    async def release(self, conn: C) -> None:
        """Give ``conn`` back; cleans it as the pool's ``reset`` mode says, discards a broken one.

        Safe under cancellation: the round trips run shielded, so the connection is
        returned or discarded even if the caller is cancelled meanwhile.
        """
        holder = self._slots.borrowed(conn)
        if holder is None or holder.releasing:
            if self._state in ("closing", "closed"):
                return  # close() already terminated it
            raise ValueError(f"release(conn): {conn!r} is not borrowed from this pool "
                             "(released twice, or acquired elsewhere)")
        adapter, mode = self._adapter, self._reset_mode
        if (not adapter.is_broken(conn) and not adapter.in_transaction(conn)
                and (mode == "none" or (mode == "session" and not adapter.session_changed(conn)))
                and self._state == "open" and self._loop is not None):
            now = self._loop.time()
            if holder.expires_at is None or now < holder.expires_at:
                self._slots.put_back(holder, now)  # the fast path: nothing to await, cannot be interrupted
                return
        holder.releasing = True
        await asyncio.shield(self._spawn(self._release_slow(holder)))

    async def _release_slow(self, holder: Holder[C]) -> None:
        conn, adapter, mode = holder.conn, self._adapter, self._reset_mode
        if adapter.is_broken(conn):
            self._counters.lost += 1
            self._discard(holder)
            return
        try:
            async with asyncio.timeout(self._reset_timeout):
                in_transaction = adapter.in_transaction(conn)
                if mode == "always" or (mode == "session" and adapter.session_changed(conn)):
                    await adapter.reset_session(conn)
                    self._counters.session_resets += 1
                elif in_transaction:
                    await adapter.rollback(conn)
                if in_transaction:
                    self._counters.rolled_back += 1
                if self._reset_hook is not None:
                    await self._reset_hook(conn)
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
        if self._state != "open":
            self._discard(holder, replace=False)
            return
        self._slots.put_back(holder, asyncio.get_running_loop().time())

    def _hand_on(self, got: Holder[C] | Slot) -> None:
        if isinstance(got, Slot):
            self._slot_freed()
        else:
            self._put_back(got)

    def _discard(self, holder: Holder[C], *, replace: bool = True, graceful: bool = True) -> None:
        """Close ``holder``'s connection in the background and reuse its slot."""
        if holder.gone:
            return
        holder.gone = True
        self._slots.forget(holder)
        if graceful and not self._adapter.is_broken(holder.conn):
            self._spawn(self._close_conn(holder.conn))
        else:
            self._adapter.terminate(holder.conn)
            self._counters.closed += 1
        self._slot_freed()
        if replace:
            self._replenish()

    def _slot_freed(self) -> None:
        slots = self._slots
        if self._state == "open":
            slots.free_slot()  # to a waiter, who opens the replacement itself
        else:
            slots.size -= 1
        if not slots.in_use and self._all_returned is not None and not self._all_returned.done():
            self._all_returned.set_result(None)

    async def _close_conn(self, conn: C) -> None:
        try:
            await asyncio.wait_for(self._adapter.close(conn), self._reset_timeout)
        except (Exception, asyncio.CancelledError):
            self._adapter.terminate(conn)
        self._counters.closed += 1

    # -- maintenance -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _replenish(self) -> None:
        slots = self._slots
        if self._state == "open" and not slots.waiters:
            for _ in range(slots.reserve(slots.min_size - slots.size)):
                self._spawn(self._open_spare())

    async def _open_spare(self) -> None:
        """Open a connection towards ``min_size``; on failure the next sweep retries (logged once per outage)."""
        try:
            holder = await self._open_reserved(None)
        except PoolConnectError:
            return  # logged once per outage by _outage_began; the next sweep retries
        self._put_back(holder)

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            self.sweep(loop.time())

    def sweep(self, now: float | None = None) -> None:
        """Close idle connections past their idle or lifetime limit, then refill to ``min_size``.

        The background task calls this every ``maintenance_interval``; acquire applies the
        same limits to the connection it is about to hand out.
        """
        now = asyncio.get_running_loop().time() if now is None else now
        slots = self._slots
        for holder in list(slots.idle):  # oldest first
            reason = holder.unusable(now, broken=self._adapter.is_broken(holder.conn), may_shrink=slots.may_shrink)
            if reason is not None:
                slots.idle.remove(holder)
                setattr(self._counters, reason, getattr(self._counters, reason) + 1)
                self._discard(holder, replace=False)
        self._replenish()

    # -- introspection ---------------------------------------------------------------------

    def stats(self) -> PoolStats:
        """A snapshot: size, idle, in use, waiting, wait percentiles and lifetime counters."""
        slots = self._slots
        return snapshot(self._counters, min_size=slots.min_size, max_size=slots.max_size, size=slots.size,
                        idle=len(slots.idle), in_use=len(slots.in_use), waiting=len(slots.waiters))

    @property
    def reset(self) -> str:
        """The reset mode: ``"none"``, ``"session"``, ``"always"`` or ``"custom"`` (a callable)."""
        return self._reset_mode

    @property
    def closed(self) -> bool:
        """True once :meth:`close` or :meth:`terminate` ran."""
        return self._state in ("closing", "closed")

    def __repr__(self) -> str:
        slots = self._slots
        return (f"<Pool {self._state} reset={self._reset_mode} size={slots.size} idle={len(slots.idle)} "
                f"in_use={len(slots.in_use)} waiting={len(slots.waiters)} max_size={slots.max_size}>")
