"""asyncpg hooks for :class:`~perf.pool.pool.Pool`: connect, close, broken and in-transaction
checks, and the session reset.

The session reset (:data:`RESET_TAIL` around asyncpg's own reset query) clears everything
a borrower can leave on a connection for the next one to see: parameters (``RESET ALL``),
the role and session authorization (``RESET ALL`` keeps them: ``SET ROLE`` would outlive
asyncpg's reset), session advisory locks, cursors ``WITH HOLD``, ``LISTEN``, temporary
tables, sequence state (``currval``/``lastval``) and statements made with SQL ``PREPARE``
(asyncpg's own cached statements are kept). One round trip, with the rollback when one is
needed; a second only when a borrower left a SQL-level prepared statement.

Connections are :class:`~perf.pool.session.SessionTrackingConnection`, so the pool's
``reset="session"`` knows which borrower's SQL text changed session state; only those
pay for the reset in that mode.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from perf.compat.asyncpg import forget_listeners, left_unfinished, settle
from perf.pool.adapter import ConnectionAdapter
from perf.pool.session import SessionTrackingConnection
from perf.pool.unavailable import is_unavailable, told_to_close, watch_for_fatal

#: Sent before asyncpg's reset query (``RESET ALL`` restores neither of these).
RESET_HEAD = "RESET SESSION AUTHORIZATION;\nRESET ROLE;\n"
#: Sent after it; the last statement's row count says whether a SQL ``PREPARE`` is left to deallocate.
RESET_TAIL = "\nDISCARD TEMP;\nDISCARD SEQUENCES;\nSELECT 1 FROM pg_prepared_statements WHERE from_sql;"


class AsyncpgAdapter(ConnectionAdapter[asyncpg.Connection]):
    """Open asyncpg connections to ``dsn`` with ``connect_kwargs`` (passed to ``asyncpg.connect``).

    ``init`` (async, takes the new connection) runs once per connection, e.g. to register
    type codecs; if it fails or is cancelled the connection is closed, never leaked.
    A ``connection_class`` that is not a :class:`SessionTrackingConnection` subclass
    works, but then ``reset="session"`` cannot tell and resets on every release.
    """

    def __init__(self, dsn: str, *, init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                 **connect_kwargs: Any) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ValueError(f"dsn must be a non-empty PostgreSQL URL, got {dsn!r}; "
                             "pass e.g. services.database_url")
        if init is not None and not callable(init):
            raise TypeError(f"init must be an async callable taking the connection, got {init!r}")
        self.dsn = dsn
        self.init = init
        self.connect_kwargs = {"connection_class": SessionTrackingConnection, **connect_kwargs}

    async def connect(self) -> asyncpg.Connection:
        """Open a connection with ``asyncpg.connect(dsn, **connect_kwargs)``, then run ``init``."""
        conn = await asyncpg.connect(self.dsn, **self.connect_kwargs)
        watch_for_fatal(conn)  # so is_broken sees a server that is closing it (perf.pool.unavailable)
        if self.init is not None:
            try:
                await self.init(conn)
            except BaseException:
                conn.terminate()
                raise
        return conn

    async def close(self, conn: asyncpg.Connection) -> None:
        """Send Terminate and close the socket."""
        await conn.close(timeout=5)

    def terminate(self, conn: asyncpg.Connection) -> None:
        """Close the socket without telling the server."""
        conn.terminate()

    def is_broken(self, conn: asyncpg.Connection) -> bool:
        """True once the socket closed (server restart, ``pg_terminate_backend``, network), or once
        the server sent a ``FATAL`` error, which it does just before closing it (a shutdown)."""
        return told_to_close(conn)

    def is_unavailable(self, exc: BaseException) -> bool:
        """:func:`perf.pool.unavailable.is_unavailable`: unreachable, restarting, shutting down."""
        return is_unavailable(exc)

    def in_transaction(self, conn: asyncpg.Connection) -> bool:
        """True when ``conn`` needs cleaning: an open (or failed) transaction, or a query
        the borrower was cancelled in (asyncpg is still cancelling it)."""
        return conn.is_in_transaction() or left_unfinished(conn)  # what asyncpg's own pool consults on release

    async def rollback(self, conn: asyncpg.Connection) -> None:
        """Wait for a pending query cancellation, then ``ROLLBACK`` an open transaction."""
        await settle(conn)  # a pending cancellation, a Transaction object the borrower abandoned
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")

    def session_changed(self, conn: asyncpg.Connection) -> bool:
        """True once the borrower sent a statement that can change session state."""
        return getattr(conn, "session_changed", True) is not False

    async def reset_session(self, conn: asyncpg.Connection) -> None:
        """Roll back (if needed) and clear all session state (module docstring), in one round trip."""
        await settle(conn)
        forget_listeners(conn)  # UNLISTEN * below drops them on the server: as asyncpg's pool does
        query = RESET_HEAD + conn.get_reset_query() + RESET_TAIL
        if conn.is_in_transaction():
            query = "ROLLBACK;\n" + query
        status = await conn.execute(query)
        if status != "SELECT 0":  # a borrower's SQL PREPARE (asyncpg's own are not from_sql)
            names = [row[0] for row in await conn.fetch("SELECT name FROM pg_prepared_statements WHERE from_sql")]
            await conn.execute("".join(f'DEALLOCATE "{name.replace(chr(34), chr(34) * 2)}";' for name in names))
        if isinstance(conn, SessionTrackingConnection):
            conn.session_changed = False

    async def check(self, conn: asyncpg.Connection) -> None:
        """``SELECT 1`` (raises when the server is gone)."""
        await conn.fetchval("SELECT 1")

    def describe(self, conn: asyncpg.Connection) -> str:
        """``pid=<backend pid>``."""
        return f"asyncpg pid={conn.get_server_pid()}"


async def server_connections(conn: asyncpg.Connection, application_name: str) -> dict[str, int]:
    """PostgreSQL's own count of backends named ``application_name``, by state.

    ``{"idle": 3, "active": 1, "idle in transaction": 0, ...}`` from ``pg_stat_activity``
    (states with no backend are absent): the server-side truth to hold a pool's stats against.
    """
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM pg_stat_activity "
        "WHERE application_name = $1 AND pid <> pg_backend_pid() GROUP BY state",
        application_name,
    )
    return {(row["state"] or "unknown"): int(row["n"]) for row in rows}
