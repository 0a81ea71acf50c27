"""One answer to "is the database unavailable?", for the API, the pool and the durable queue.

:func:`is_unavailable` tells an error that means "PostgreSQL is not there right now"
(retry shortly: the API answers 503, the queue refuses the task) from one that means
"this request or query is wrong" (a bug or a 4xx). Kept in one place because two copies
drifted: the API's list lacked the error below and answered 500 on a restart.

A PostgreSQL shutting down (``pg_ctl -m fast``, a failover) sends every backend's client an
``ErrorResponse`` of severity ``FATAL`` (``57P01 terminating connection due to
administrator command``), then closes the socket a few milliseconds later. asyncpg reads
that message while the connection sits idle in a pool, but only learns the socket is
gone at the close; in between ``is_closed()`` is still False and the next query fails
before anything is sent, with ``InternalClientError: cannot switch to state N; another
operation (2) is in progress``. :func:`watch_for_fatal` closes that window: it looks at
the end of every chunk the server sends, and once one ends with a ``FATAL`` or ``PANIC``
error the connection counts as broken (:func:`told_to_close`), so a pool drops it instead
of lending it out.

Checked against asyncpg 0.32.0 with uvloop and asyncio transports (``tests/test_pool_shutdown.py``
fails if a later asyncpg changes either behaviour).
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from perf.compat import asyncpg as compat_asyncpg
from perf.pool.errors import PoolError

#: Exception types that always mean "the database is unreachable or went away".
UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError, TimeoutError are subclasses)
    asyncio.TimeoutError,
    PoolError,  # no connection free in time, pool closed, connect failed
    asyncpg.PostgresConnectionError,  # class 08: connection exceptions
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01: terminated by the administrator (a fast shutdown)
    asyncpg.CrashShutdownError,  # 57P02: another backend crashed, the server restarts
    asyncpg.InterfaceError,  # "connection is closed", "connection was closed in the middle of operation"
)

# The text of asyncpg's InternalClientError when a connection the server already dropped is
# used: its protocol is stuck in state 2 (ERROR_CONSUME) and refuses to start the operation.
_DEAD_PROTOCOL = "another operation (2) is in progress"
_FATAL_TAGS = (b"VFATAL\0", b"VPANIC\0", b"SFATAL\0", b"SPANIC\0")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means PostgreSQL is unreachable or dropped the connection: retry later.

    >>> is_unavailable(ConnectionRefusedError()), is_unavailable(asyncpg.UndefinedTableError())
    (True, False)
    >>> is_unavailable(asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"))
    True
    """
    if isinstance(exc, UNAVAILABLE_TYPES):
        return True
    return isinstance(exc, asyncpg.InternalClientError) and _DEAD_PROTOCOL in str(exc)


class FatalWatch(asyncio.Protocol):
    """Sits between a transport and asyncpg's protocol; notes a ``FATAL``/``PANIC`` from the server.

    A fatal error is the last message a server sends on a connection, so only the end of
    each chunk is looked at: one two-byte comparison per chunk (an ``ErrorResponse`` ends
    with two zero bytes; a chunk that ends a normal reply ends with ``ReadyForQuery``).
    A fatal error split across two chunks right after its severity field is missed (then
    the socket's close, a moment later, still tells); a false match costs one reconnect.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fatal = False
        self._forward = inner.data_received

    def data_received(self, data: bytes) -> None:
        """Note a fatal error at the end of ``data``, then hand ``data`` to asyncpg."""
        if data[-2:] == b"\0\0" and not self.fatal:
            tail = data[-2048:]
            # 'V' is the non-localised severity (PostgreSQL >= 9.6), 'S' the localised one.
            self.fatal = any(tag in tail for tag in _FATAL_TAGS)
        self._forward(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        result: bool | None = self.inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


def watch_for_fatal(conn: asyncpg.Connection) -> FatalWatch:
    """Interpose a :class:`FatalWatch` on ``conn``'s transport (once) and return it."""
    transport = compat_asyncpg.transport(conn)
    if transport is None:
        raise ValueError(f"{conn!r} is closed; watch_for_fatal needs an open connection")
    current = transport.get_protocol()
    if isinstance(current, FatalWatch):
        return current
    watch = FatalWatch(current)
    transport.set_protocol(watch)
    return watch


def told_to_close(conn: asyncpg.Connection) -> bool:
    """True once ``conn`` is closed or the server sent it a fatal error (it is closing it)."""
    if conn.is_closed():
        return True
    transport = compat_asyncpg.transport(conn)
    protocol = transport.get_protocol() if transport is not None else None
    return isinstance(protocol, FatalWatch) and protocol.fatal
