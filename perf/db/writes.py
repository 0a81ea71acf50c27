"""Batch insert strategies, one function each, with one interface so they can be raced.

Every strategy is ``await strategy(conn, table, columns, rows, *, batch_size=..., schema=None)``
and returns the number of rows written:

* :func:`insert_row_by_row` — one ``INSERT`` per row, each its own (autocommit) transaction;
* :func:`insert_rows_in_transaction` — one ``INSERT`` per row, ``batch_size`` rows per transaction;
* :func:`insert_executemany` — ``executemany`` (pipelined) per batch, one transaction per batch;
* :func:`insert_unnest` — one ``INSERT … SELECT FROM unnest($1::t[], …)`` per batch;
* :func:`insert_copy` — ``COPY`` (``copy_records_to_table``) per batch.

Each batch runs in its own transaction, so a bad row (NULL in a NOT NULL column, a
value of the wrong type) rolls back exactly the batch that holds it: earlier batches
stay committed, nothing is half-written, and :class:`BatchWriteError` says which
batch failed, which rows it covered and how many rows were committed before it.
Table and column names are quoted; values are always bound or sent by COPY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg

from perf.db.ident import qualified, quote_ident

__all__ = [
    "STRATEGIES",
    "BatchWriteError",
    "InsertStrategy",
    "insert_copy",
    "insert_executemany",
    "insert_row_by_row",
    "insert_rows_in_transaction",
    "insert_unnest",
]

Row = Sequence[Any]


class InsertStrategy(Protocol):
    """The shared signature of every strategy in this module."""

    def __call__(
        self,
        conn: asyncpg.Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Row],
        *,
        batch_size: int | None = ...,
        schema: str | None = ...,
    ) -> Awaitable[int]: ...


class BatchWriteError(Exception):
    """A batch failed and was rolled back; the batches before it are committed.

    Attributes: ``strategy``, ``batch_index`` (0-based), ``first_row`` and ``last_row``
    (indexes into ``rows``, inclusive), ``rows_written`` (committed before this batch).
    The driver's exception is ``__cause__``.
    """

    def __init__(self, *, strategy: str, batch_index: int, first_row: int, last_row: int,
                 rows_written: int, cause: BaseException) -> None:
        self.strategy = strategy
        self.batch_index = batch_index
        self.first_row = first_row
        self.last_row = last_row
        self.rows_written = rows_written
        super().__init__(
            f"{strategy}: batch {batch_index} (rows {first_row}..{last_row}) failed and was rolled back; "
            f"{rows_written} rows committed before it. Cause: {type(cause).__name__}: {cause}. "
            f"Fix the bad row and write again from row {first_row}."
        )


def _check_args(columns: Sequence[str], rows: Sequence[Row], batch_size: int | None) -> None:
    if isinstance(columns, str) or not columns:
        raise ValueError(f"columns must be a non-empty sequence of column names, got {columns!r}")
    if not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a sequence (list of tuples), got {type(rows).__name__}; wrap it in list()")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be an integer >= 1 or None (one batch), got {batch_size!r}")


async def _write_batches(
    conn: asyncpg.Connection,
    strategy: str,
    rows: Sequence[Row],
    batch_size: int | None,
    write: Callable[[Sequence[Row]], Awaitable[None]],
    *,
    transactional: bool = True,
) -> int:
    size = batch_size or max(len(rows), 1)
    written = 0
    for index, start in enumerate(range(0, len(rows), size)):
        batch = rows[start : start + size]
        try:
            if transactional:
                async with conn.transaction():
                    await write(batch)
            else:
                await write(batch)
        except Exception as exc:  # driver, server or encoding error: this batch is rolled back
            raise BatchWriteError(
                strategy=strategy, batch_index=index, first_row=start,
                last_row=start + len(batch) - 1, rows_written=written, cause=exc,
            ) from exc
        written += len(batch)
    return written


def _insert_sql(table: str, columns: Sequence[str], schema: str | None) -> str:
    names = ", ".join(quote_ident(c) for c in columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {qualified(table, schema)} ({names}) VALUES ({params})"


async def insert_row_by_row(conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Row],
                            *, batch_size: int | None = 1, schema: str | None = None) -> int:
    """One ``INSERT`` round trip and one commit (WAL flush) per row: the slow baseline.

    ``batch_size`` is accepted for the shared interface but every row is its own batch.
    """
    _check_args(columns, rows, batch_size)
    sql = _insert_sql(table, columns, schema)

    async def write(batch: Sequence[Row]) -> None:
        await conn.execute(sql, *batch[0])

    return await _write_batches(conn, "insert_row_by_row", rows, 1, write, transactional=False)


async def insert_rows_in_transaction(conn: asyncpg.Connection, table: str, columns: Sequence[str],
                                     rows: Sequence[Row], *, batch_size: int | None = None,
                                     schema: str | None = None) -> int:
    """One ``INSERT`` round trip per row, but one commit per batch (default: all rows)."""
    _check_args(columns, rows, batch_size)
    sql = _insert_sql(table, columns, schema)

    async def write(batch: Sequence[Row]) -> None:
        for row in batch:
            await conn.execute(sql, *row)

    return await _write_batches(conn, "insert_rows_in_transaction", rows, batch_size, write)


async def insert_executemany(conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Row],
                             *, batch_size: int | None = 1000, schema: str | None = None) -> int:
    """``executemany`` per batch: one prepared statement, the rows pipelined without waiting
    for each reply, one commit per batch."""
    _check_args(columns, rows, batch_size)
    sql = _insert_sql(table, columns, schema)

    async def write(batch: Sequence[Row]) -> None:
        await conn.executemany(sql, batch)

    return await _write_batches(conn, "insert_executemany", rows, batch_size, write)


async def _column_types(conn: asyncpg.Connection, table: str, columns: Sequence[str],
                        schema: str | None) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, NULL) AS type FROM pg_attribute a "
        "WHERE a.attrelid = $1::regclass AND a.attname = ANY($2::text[]) AND a.attnum > 0 "
        "AND NOT a.attisdropped",
        qualified(table, schema),
        list(columns),
    )
    types = {r["attname"]: r["type"] for r in rows}
    missing = [c for c in columns if c not in types]
    if missing:
        raise ValueError(f"columns {missing} do not exist in table {table!r}; it has {sorted(types) or 'none of them'}")
    return [types[c] for c in columns]


async def insert_unnest(conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Row],
                        *, batch_size: int | None = 10_000, schema: str | None = None) -> int:
    """One statement per batch: ``INSERT … SELECT * FROM unnest($1::type[], $2::type[], …)``.

    Each column travels as one array parameter (types read from the catalog), so a
    batch is a single round trip and a single statement.
    """
    _check_args(columns, rows, batch_size)
    types = await _column_types(conn, table, columns, schema)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, start=1))
    names = ", ".join(quote_ident(c) for c in columns)
    sql = f"INSERT INTO {qualified(table, schema)} ({names}) SELECT * FROM unnest({arrays})"

    async def write(batch: Sequence[Row]) -> None:
        await conn.execute(sql, *(list(col) for col in zip(*batch, strict=True)))

    return await _write_batches(conn, "insert_unnest", rows, batch_size, write)


async def insert_copy(conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Row],
                      *, batch_size: int | None = None, schema: str | None = None) -> int:
    """``COPY … FROM STDIN (FORMAT binary)`` per batch (default: all rows in one COPY)."""
    _check_args(columns, rows, batch_size)
    names = list(columns)

    async def write(batch: Sequence[Row]) -> None:
        await conn.copy_records_to_table(table, records=batch, columns=names, schema_name=schema)

    return await _write_batches(conn, "insert_copy", rows, batch_size, write)


#: The strategies in the order the notebook races them (slowest first).
STRATEGIES: dict[str, InsertStrategy] = {
    "row_by_row": insert_row_by_row,
    "rows_in_transaction": insert_rows_in_transaction,
    "executemany": insert_executemany,
    "unnest": insert_unnest,
    "copy": insert_copy,
}
