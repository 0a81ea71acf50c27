"""The pool's slot bookkeeping: which connections are idle, lent out or being waited for.

:class:`Slots` never awaits and never touches a connection: it only moves
:class:`Holder` objects between the idle stack, the borrowed map and the waiters'
futures, and counts slots (open connections plus those being opened). Everything that
does I/O (connect, reset, close) lives in :class:`~perf.pool.pool.Pool`, which uses it.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Generic, TypeVar

C = TypeVar("C")


class Holder(Generic[C]):
    """One pooled connection plus its bookkeeping (expiry, idle since, borrower)."""

    __slots__ = ("conn", "expires_at", "idle_limit", "idle_since", "acquired_at", "owner", "releasing", "gone")

    def __init__(self, conn: C, now: float, lifetime: float | None, idle_timeout: float | None,
                 jitter: float) -> None:
        self.conn = conn
        self.expires_at = now + lifetime * (1.0 - jitter * random.random()) if lifetime else None
        self.idle_limit = idle_timeout * (1.0 - jitter * random.random()) if idle_timeout else None
        self.idle_since = now
        self.acquired_at = now
        self.owner: asyncio.Task[object] | None = None  # the task that borrowed it
        self.releasing = False
        self.gone = False  # closed or terminated: no longer counted in the pool's size

    def unusable(self, now: float, *, broken: bool, may_shrink: bool) -> str | None:
        """Why this idle connection must not be lent out (a counter name), or None if it may.

        Idle expiry applies only when the pool ``may_shrink`` (it is above ``min_size``).
        """
        if broken:
            return "lost"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired_lifetime"
        if may_shrink and self.idle_limit is not None and now - self.idle_since > self.idle_limit:
            return "expired_idle"
        return None


class Slot:
    """Handed to a waiter instead of a connection: "a slot is free, open a connection into it"."""

    __slots__ = ()


SLOT = Slot()


class Slots(Generic[C]):
    """Up to ``max_size`` slots: idle holders (a LIFO stack), borrowed holders, FIFO waiters.

    ``size`` counts every slot taken: connections idle, borrowed, or being opened.
    A returned holder goes to the longest waiter first, else onto the idle stack.
    """

    __slots__ = ("min_size", "max_size", "size", "idle", "in_use", "waiters")

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size
        self.size = 0
        self.idle: deque[Holder[C]] = deque()
        self.in_use: dict[int, Holder[C]] = {}
        self.waiters: deque[asyncio.Future[Holder[C] | Slot]] = deque()

    @property
    def may_shrink(self) -> bool:
        """True when closing one connection keeps the pool at or above ``min_size``."""
        return self.size > self.min_size

    def take_idle(self) -> Holder[C] | None:
        """Pop the most recently returned idle holder (the warmest) and mark it borrowed."""
        if not self.idle:
            return None
        holder = self.idle.pop()  # LIFO: the coldest age out at the far end
        self.in_use[id(holder.conn)] = holder
        return holder

    def reserve(self, count: int) -> int:
        """Take up to ``count`` free slots (never past ``max_size``); return how many were taken."""
        count = max(0, min(count, self.max_size - self.size))
        self.size += count
        return count

    def lend(self, holder: Holder[C]) -> None:
        """Mark ``holder`` (a new connection in a reserved slot) as borrowed."""
        self.in_use[id(holder.conn)] = holder

    def borrowed(self, conn: C) -> Holder[C] | None:
        """The holder of ``conn`` if it is currently lent out by this pool."""
        holder = self.in_use.get(id(conn))
        return holder if holder is not None and holder.conn is conn else None

    def put_back(self, holder: Holder[C], now: float) -> None:
        """Return ``holder``: straight to the longest waiter, else onto the idle stack."""
        holder.owner = None
        holder.idle_since = now
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(holder)  # stays in ``in_use``: the waiter now borrows it
                return
        self.in_use.pop(id(holder.conn), None)
        self.idle.append(holder)

    def forget(self, holder: Holder[C]) -> None:
        """Drop ``holder`` from the borrowed map (it is being closed); its slot stays taken."""
        self.in_use.pop(id(holder.conn), None)

    def free_slot(self) -> None:
        """Give a slot up: to the longest waiter (who opens a connection into it), else for good."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(SLOT)
                return
        self.size -= 1

    def wait(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Holder[C] | Slot]:
        """Join the queue; the future resolves to a holder or to :data:`SLOT`."""
        fut: asyncio.Future[Holder[C] | Slot] = loop.create_future()
        self.waiters.append(fut)
        return fut

    def stop_waiting(self, fut: asyncio.Future[Holder[C] | Slot]) -> None:
        """Leave the queue (timed out or cancelled before anything was handed over)."""
        fut.cancel()
        try:
            self.waiters.remove(fut)
        except ValueError:
            pass

    def fail_waiters(self, exc: BaseException) -> None:
        """Fail every waiter with ``exc`` (the pool is closing)."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)
