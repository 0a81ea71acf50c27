"""What a pool needs to know about the thing it pools: open, close, and tell a bad one apart."""

from __future__ import annotations

from typing import Generic, TypeVar

C = TypeVar("C")


class ConnectionAdapter(Generic[C]):
    """Hooks the generic :class:`~perf.pool.pool.Pool` calls; subclass it for a driver.

    Only :meth:`connect` and :meth:`close` are required. The defaults of the other hooks
    describe a connection that never breaks and has no transactions.
    """

    async def connect(self) -> C:
        """Open one new connection."""
        raise NotImplementedError("subclass ConnectionAdapter and implement connect()")

    async def close(self, conn: C) -> None:
        """Close ``conn`` gracefully (may raise; the pool then calls :meth:`terminate`)."""
        raise NotImplementedError("subclass ConnectionAdapter and implement close()")

    def terminate(self, conn: C) -> None:
        """Drop ``conn`` at once, without a round trip (used when close fails or times out)."""

    def is_broken(self, conn: C) -> bool:
        """True when ``conn`` can no longer be used (its socket is gone): discard it."""
        return False

    def is_unavailable(self, exc: BaseException) -> bool:
        """True when ``exc`` (from :meth:`connect`) means "the server is unreachable, retry shortly"."""
        return isinstance(exc, OSError)

    def in_transaction(self, conn: C) -> bool:
        """True when ``conn`` is inside a transaction the borrower left open."""
        return False

    async def rollback(self, conn: C) -> None:
        """Roll back the open transaction on ``conn``."""

    def session_changed(self, conn: C) -> bool:
        """True when the borrower may have changed session state (the pool's ``reset="session"``).

        The default cannot tell, so it says True: ``"session"`` then resets on every release.
        """
        return True

    async def reset_session(self, conn: C) -> None:
        """Roll back an open transaction and restore session state, in as few round trips as possible.

        The default only rolls back (a resource without session state).
        """
        if self.in_transaction(conn):
            await self.rollback(conn)

    async def check(self, conn: C) -> None:
        """A cheap round trip proving ``conn`` works; raise if it does not."""

    def describe(self, conn: C) -> str:
        """A short label for ``conn`` in reports (e.g. the server process id)."""
        return f"{type(conn).__name__}@{id(conn):#x}"
