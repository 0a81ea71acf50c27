"""The small objects around a pooled connection: its holder, the acquire context, the close report."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from perf.pool.pool import Pool

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
        self.owner: Any = None  # the asyncio.Task that borrowed it
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
        self._conn = await self._pool._acquire(self._timeout)
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        conn, self._conn = self._conn, None
        await self._pool.release(conn)  # type: ignore[arg-type]


