"""Read a big table in chunks: LIMIT/OFFSET, keyset, and a server-side cursor.

All three are async generators with one interface::

    async for chunk in read_keyset(conn, "products", key=("created_at", "id"), chunk_size=1000):
        ...  # chunk is a list of asyncpg Records, in key order

* :func:`read_offset` — ``ORDER BY key LIMIT n OFFSET k*n`` (the tutorial's way). Page k
  makes the server produce and throw away k*n rows, so it slows down as it goes, and
  a row inserted before the current position shifts later pages (a row is read twice).
* :func:`read_keyset` — ``WHERE (key) > ($last) ORDER BY key LIMIT n``: every page is an
  index range scan starting where the last one ended; constant cost, and concurrent
  inserts never make it repeat or skip a row that existed when it started.
  ``key`` must be unique (add ``id`` to a non-unique sort column: ``("created_at", "id")``).
* :func:`read_cursor` — ``DECLARE CURSOR`` in a transaction, ``FETCH n`` per chunk: one
  snapshot, constant cost per chunk, but it holds a transaction (and the connection)
  open until the reader finishes.

Stopping early: wrap the generator in ``contextlib.aclosing`` so the cursor's
transaction ends at once rather than when the generator is garbage-collected.
Values are bound; identifiers are quoted with :func:`perf.db.ident.quote_ident`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import asyncpg
import pandas as pd

from perf.db.ident import qualified, quote_ident

__all__ = ["READERS", "chunk_timings", "read_cursor", "read_keyset", "read_offset"]

Chunk = list[asyncpg.Record]


def _select(table: str, key: Sequence[str], columns: Sequence[str] | None, schema: str | None,
            chunk_size: int) -> tuple[str, str]:
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}; pass e.g. chunk_size=1000")
    if isinstance(key, str) or not key:
        raise ValueError(f"key must be a non-empty sequence of column names, got {key!r}; e.g. key=('id',)")
    if columns is not None:
        missing = [k for k in key if k not in columns]
        if missing:
            raise ValueError(f"columns must include the key columns {missing}; got columns={list(columns)!r}")
    cols = "*" if columns is None else ", ".join(quote_ident(c) for c in columns)
    order = ", ".join(quote_ident(k) for k in key)
    return f"SELECT {cols} FROM {qualified(table, schema)}", order


async def read_offset(conn: asyncpg.Connection, table: str, *, key: Sequence[str] = ("id",),
                      chunk_size: int = 1000, columns: Sequence[str] | None = None,
                      schema: str | None = None) -> AsyncGenerator[Chunk, None]:
    """Yield chunks of ``table`` ordered by ``key`` using ``LIMIT $1 OFFSET $2`` (cost grows per page)."""
    select, order = _select(table, key, columns, schema, chunk_size)
    sql = f"{select} ORDER BY {order} LIMIT $1 OFFSET $2"
    offset = 0
    while True:
        rows = await conn.fetch(sql, chunk_size, offset)
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        offset += len(rows)


async def read_keyset(conn: asyncpg.Connection, table: str, *, key: Sequence[str] = ("id",),
                      chunk_size: int = 1000, columns: Sequence[str] | None = None,
                      schema: str | None = None) -> AsyncGenerator[Chunk, None]:
    """Yield chunks of ``table`` ordered by the unique ``key`` using ``WHERE (key) > ($last…)``.

    A composite key compares as a row value, ``(created_at, id) > ($1, $2)``, which an
    index on ``(created_at, id)`` answers with one range scan.
    """
    select, order = _select(table, key, columns, schema, chunk_size)
    n = len(key)
    last = ", ".join(f"${i}" for i in range(2, n + 2))
    first_sql = f"{select} ORDER BY {order} LIMIT $1"
    next_sql = f"{select} WHERE ({order}) > ({last}) ORDER BY {order} LIMIT $1"
    rows = await conn.fetch(first_sql, chunk_size)
    while rows:
        yield rows
        if len(rows) < chunk_size:
            return
        tail = rows[-1]
        rows = await conn.fetch(next_sql, chunk_size, *(tail[k] for k in key))


async def read_cursor(conn: asyncpg.Connection, table: str, *, key: Sequence[str] = ("id",),
                      chunk_size: int = 1000, columns: Sequence[str] | None = None,
                      schema: str | None = None) -> AsyncGenerator[Chunk, None]:
    """Yield chunks of ``table`` ordered by ``key`` from a server-side cursor (``FETCH n``).

    Runs inside a transaction (cursors live in one); if ``conn`` is already in a
    transaction it uses a savepoint. The transaction ends when the generator does.
    """
    select, order = _select(table, key, columns, schema, chunk_size)
    async with conn.transaction():
        cursor = await conn.cursor(f"{select} ORDER BY {order}")
        while True:
            rows = await cursor.fetch(chunk_size)
            if not rows:
                return
            yield rows
            if len(rows) < chunk_size:
                return


#: The readers in the order the notebook compares them.
READERS = {"offset": read_offset, "keyset": read_keyset, "cursor": read_cursor}


async def chunk_timings(chunks: AsyncIterator[Chunk], *, label: str = "reader") -> pd.DataFrame:
    """Consume ``chunks`` and time each one: columns ``reader, page, rows, seconds``.

    ``seconds`` is the time the generator took to produce that chunk (the query's
    round trip), which is what grows with the page number for OFFSET.
    """
    out = []
    page = 0
    t0 = time.perf_counter()
    async for chunk in chunks:
        out.append((label, page, len(chunk), time.perf_counter() - t0))
        page += 1
        t0 = time.perf_counter()
    return pd.DataFrame(out, columns=["reader", "page", "rows", "seconds"])
