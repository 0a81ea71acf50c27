"""The pool's lifecycle: open, close (waiting for borrowers, then terminating), and the
background sweep that enforces idle timeout and max lifetime and refills to ``min_size``.

A mixin of :class:`~perf.pool.pool.Pool`, kept apart so each file holds one concern; it
uses the pool's slot bookkeeping (``_open_reserved``, ``_put_back``, ``_discard``, ...).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from perf.pool.errors import PoolClosed
from perf.pool.handles import CloseReport, Holder
from perf.pool.options import check_number

if TYPE_CHECKING:
    from perf.pool.pool import Pool

C = TypeVar("C")
log = logging.getLogger("perf.pool.pool")  # one logger for the whole pool


def _task_name(task: asyncio.Task[Any] | None) -> str:
    return task.get_name() if task is not None else "no task"


class PoolLifecycle(Generic[C]):
    """Open/close/terminate and background maintenance for :class:`~perf.pool.pool.Pool`."""

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> Pool[C]:
        """Open ``min_size`` connections and start the maintenance task (idempotent)."""
        if self._state in ("closing", "closed"):
            raise PoolClosed("this pool is closed; create a new one with create_pool(...)")
        if self._state == "new":
            self._state = "open"
            loop = asyncio.get_running_loop()
            self._maintenance = loop.create_task(self._maintain(), name="perf.pool maintenance")
            holders = await asyncio.gather(*(self._open_reserved(None) for _ in self._reserve(self._min_size)),
                                           return_exceptions=True)
            errors = [h for h in holders if isinstance(h, BaseException)]
            for holder in holders:
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
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(PoolClosed("the pool was closed while this acquire waited"))
        while self._idle:
            self._discard(self._idle.pop(), replace=False)
        still_held: tuple[str, ...] = ()
        if self._in_use:
            self._all_returned = loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._all_returned), timeout)
            except TimeoutError:
                now = loop.time()
                still_held = tuple(f"{self._adapter.describe(h.conn)} held by {_task_name(h.owner)} "
                                   f"for {now - h.acquired_at:.1f}s" for h in self._in_use.values())
                for holder in list(self._in_use.values()):
                    self._in_use.pop(id(holder.conn), None)
                    holder.gone = True  # a release still running for it must not count it again
                    self._adapter.terminate(holder.conn)
                    self._counters.closed += 1
                    self._size -= 1
                log.warning("pool closed with %d connection(s) still borrowed, terminated: %s",
                            len(still_held), "; ".join(still_held))
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._state = "closed"
        return CloseReport(graceful=not still_held, still_held=still_held, waited_seconds=loop.time() - started)

    def terminate(self) -> None:
        """Close every connection at once, without waiting for borrowers (last resort)."""
        self._state = "closed"
        for task in [self._maintenance, *self._tasks]:
            if task is not None:
                task.cancel()
        for holder in [*self._idle, *self._in_use.values()]:
            self._adapter.terminate(holder.conn)
        self._idle.clear()
        self._in_use.clear()
        self._size = 0
        for fut in self._waiters:
            if not fut.done():
                fut.set_exception(PoolClosed("the pool was terminated while this acquire waited"))
        self._waiters.clear()

    # -- maintenance ---------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _replenish(self) -> None:
        if self._state == "open" and not self._waiters:
            for _ in self._reserve(self._min_size - self._size):
                self._spawn(self._open_spare())

    async def _open_spare(self) -> None:
        try:
            holder = await self._open_reserved(None)
        except PoolConnectError as exc:
            log.info("could not open a spare connection (will retry): %s", exc.__cause__)
            return
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
        for holder in list(self._idle):  # oldest first
            reason = holder.unusable(now, broken=self._adapter.is_broken(holder.conn),
                                     may_shrink=self._size > self._min_size)
            if reason is not None:
                self._idle.remove(holder)
                self._count(reason)
                self._discard(holder, replace=False)
        self._replenish()
