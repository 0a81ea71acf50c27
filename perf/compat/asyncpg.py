"""asyncpg's private names, for :mod:`perf.pool` (checked against asyncpg 0.32.0, the pin).

A pool that hands a connection to the next borrower must know what the last one left
unfinished and clear it. asyncpg's public API answers part of that
(``Connection.is_in_transaction()``, ``get_reset_query()``) and its own pool reads the rest
from private attributes on release; so do these functions, for the same reasons:

* a query the borrower was cancelled in is still being cancelled (``_protocol._is_cancelling``,
  ``_protocol._wait_for_cancellation``): until then ``is_in_transaction()`` reports the state
  before that query;
* a ``Transaction`` object the borrower started and abandoned (``_top_xact``) makes the next
  borrower's ``conn.transaction()`` a savepoint outside any transaction;
* ``LISTEN`` callbacks (``_listeners``, ``_log_listeners``) the reset's ``UNLISTEN *`` drops on
  the server must go from the client too, and there is no public way to list them.

The public ``Connection.reset()`` does the last two, but in a round trip of its own (and a
``ROLLBACK`` in another) before the reset this workbook sends in one (measured in
``docs/techniques.md``). :func:`transport` reaches the socket, which asyncpg exposes no other way,
so :mod:`perf.pool.unavailable` can see a server's ``FATAL`` before the close.
"""

from __future__ import annotations

import asyncio

import asyncpg

__all__ = ["forget_listeners", "left_unfinished", "settle", "transport"]

#: The asyncpg version these names were checked against (``requirements.txt``).
CHECKED = "0.32.0"


def left_unfinished(conn: asyncpg.Connection) -> bool:
    """True while ``conn`` holds an un-ended ``Transaction`` object or a query being cancelled."""
    return conn._top_xact is not None or bool(conn._protocol._is_cancelling())


async def settle(conn: asyncpg.Connection) -> None:
    """Wait until a pending query cancellation is acknowledged, then forget an abandoned
    ``Transaction`` object (the caller rolls back what the server still has open)."""
    if conn._protocol._is_cancelling():
        await conn._protocol._wait_for_cancellation()
    conn._top_xact = None


def forget_listeners(conn: asyncpg.Connection) -> None:
    """Drop ``conn``'s ``LISTEN`` and log callbacks on the client side, as ``Connection.reset()`` does
    (send ``UNLISTEN *`` to drop them on the server)."""
    conn._listeners.clear()
    conn._log_listeners.clear()


def transport(conn: asyncpg.Connection) -> asyncio.Transport | None:
    """The transport under ``conn`` (None once it is closed)."""
    found: asyncio.Transport | None = conn._transport
    return found
