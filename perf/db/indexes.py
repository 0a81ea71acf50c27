"""Index management: create/drop (CONCURRENTLY), usage reports, and before/after comparisons.

* :func:`create_index` / :func:`drop_index` — ``CONCURRENTLY`` by default (writes keep
  flowing while the index builds), plain when the connection is inside a transaction
  (where CONCURRENTLY is not allowed). Every name is quoted, so ``"odd name"`` works and
  nothing can be injected. A failed concurrent build leaves an INVALID index behind; it
  is dropped before the error propagates.
* :func:`list_indexes` — every index of a schema with size and usage
  (``pg_stat_user_indexes``); :func:`unused_indexes` — those never scanned (they cost
  writes and space for nothing); :func:`seq_scan_heavy_tables` — tables read mostly by
  sequential scans (``pg_stat_user_tables``), where an index may be missing.
* :func:`compare_index` — a query's plan and time before and after adding an index.

Statistics views lag: a backend publishes its counters when it goes idle, at most once
a second. :func:`flush_stats` makes the current connection's counters visible at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pandas as pd

from perf.db.ident import qualified, quote_ident
from perf.db.plans import ExplainResult, explain
from perf.measure import Timing, time_async

__all__ = [
    "IndexEffect",
    "compare_index",
    "create_index",
    "drop_index",
    "flush_stats",
    "list_indexes",
    "seq_scan_heavy_tables",
    "unused_indexes",
]


def _default_name(table: str, columns: Sequence[str]) -> str:
    name = f"{table}_{'_'.join(columns)}_idx"
    return name if len(name.encode()) <= 63 else name.encode()[:59].decode(errors="ignore") + "_idx"


async def create_index(conn: asyncpg.Connection, table: str, columns: Sequence[str], *,
                       name: str | None = None, unique: bool = False, concurrently: bool = True,
                       schema: str | None = None) -> str:
    """Create an index on ``table(columns)`` if no index of that name exists; return its name.

    ``columns`` are plain column names, each quoted (expression or ``DESC`` indexes are
    out of scope: write those by hand). ``concurrently`` is ignored inside a transaction, where PostgreSQL forbids it.
    """
    if isinstance(columns, str) or not columns:
        raise ValueError(f"columns must be a non-empty sequence of column names, got {columns!r}; "
                         "e.g. ('created_at', 'id')")
    name = name or _default_name(table, columns)
    concurrent = concurrently and not conn.is_in_transaction()
    sql = (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX {'CONCURRENTLY ' if concurrent else ''}IF NOT EXISTS "
        f"{quote_ident(name)} ON {qualified(table, schema)} ({', '.join(quote_ident(c) for c in columns)})"
    )
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError:
        if concurrent:
            # A failed CONCURRENTLY build leaves an INVALID index that still slows writes.
            await conn.execute(f"DROP INDEX IF EXISTS {qualified(name, schema)}")
        raise
    return name


async def drop_index(conn: asyncpg.Connection, name: str, *, concurrently: bool = True,
                     schema: str | None = None) -> None:
    """Drop the index ``name`` if it exists (``CONCURRENTLY`` outside a transaction)."""
    concurrent = concurrently and not conn.is_in_transaction()
    await conn.execute(f"DROP INDEX {'CONCURRENTLY ' if concurrent else ''}IF EXISTS {qualified(name, schema)}")


async def flush_stats(conn: asyncpg.Connection) -> None:
    """Publish this connection's pending statistics and drop its cached stats snapshot."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT pg_stat_clear_snapshot()")


_LIST = """
SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS index,
       pg_relation_size(s.indexrelid) AS size_bytes,
       pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
       s.idx_scan AS scans, s.idx_tup_read AS tuples_read, s.idx_tup_fetch AS tuples_fetched,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid,
       pg_get_indexdef(s.indexrelid) AS definition
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = coalesce($1, current_schema()) AND ($2::text IS NULL OR s.relname = $2)
ORDER BY s.relname, s.indexrelname
"""


async def list_indexes(conn: asyncpg.Connection, *, schema: str | None = None,
                       table: str | None = None) -> pd.DataFrame:
    """Every index in ``schema`` (default: the current one), optionally of one ``table``.

    Columns: schema, table, index, size_bytes, size, scans, tuples_read, tuples_fetched,
    is_unique, is_primary, is_valid, definition.
    """
    rows = await conn.fetch(_LIST, schema, table)
    columns = ["schema", "table", "index", "size_bytes", "size", "scans", "tuples_read", "tuples_fetched",
               "is_unique", "is_primary", "is_valid", "definition"]
    return pd.DataFrame([dict(r) for r in rows], columns=columns)


async def unused_indexes(conn: asyncpg.Connection, *, schema: str | None = None) -> pd.DataFrame:
    """Indexes never scanned since statistics were reset, excluding unique and primary keys
    (those enforce constraints even when no query reads them). Largest first."""
    frame = await list_indexes(conn, schema=schema)
    unused = frame[(frame["scans"] == 0) & ~frame["is_unique"] & ~frame["is_primary"]]
    return unused.sort_values("size_bytes", ascending=False).reset_index(drop=True)


_SEQ = """
SELECT schemaname AS schema, relname AS table, seq_scan, seq_tup_read,
       coalesce(idx_scan, 0) AS idx_scan, n_live_tup AS live_rows,
       seq_tup_read::float8 / greatest(seq_scan, 1) AS rows_per_seq_scan
FROM pg_stat_user_tables
WHERE schemaname = coalesce($1, current_schema())
  AND seq_scan > coalesce(idx_scan, 0) AND n_live_tup >= $2
ORDER BY seq_tup_read DESC
"""


async def seq_scan_heavy_tables(conn: asyncpg.Connection, *, schema: str | None = None,
                                min_rows: int = 1000) -> pd.DataFrame:
    """Tables with at least ``min_rows`` live rows read more often by sequential scan than by index.

    Small tables are left out: scanning a few pages is the right plan for them.
    """
    if not isinstance(min_rows, int) or min_rows < 0:
        raise ValueError(f"min_rows must be an integer >= 0, got {min_rows!r}")
    rows = await conn.fetch(_SEQ, schema, min_rows)
    columns = ["schema", "table", "seq_scan", "seq_tup_read", "idx_scan", "live_rows", "rows_per_seq_scan"]
    return pd.DataFrame([dict(r) for r in rows], columns=columns)


@dataclass(frozen=True)
class IndexEffect:
    """A query's plan and timing before and after an index (from :func:`compare_index`)."""

    index: str
    before: ExplainResult
    after: ExplainResult
    before_time: Timing
    after_time: Timing

    @property
    def speedup(self) -> float:
        """Median time before / median time after."""
        return self.before_time.median / self.after_time.median


async def compare_index(conn: asyncpg.Connection, sql: str, *args: Any, table: str, columns: Sequence[str],
                        name: str | None = None, schema: str | None = None, repeat: int = 5,
                        keep: bool = False) -> IndexEffect:
    """EXPLAIN and time ``sql`` without the index, create it (and ANALYZE), then again with it.

    The two timings are sequential (building an index every round would dominate);
    each is ``repeat`` runs after one warm-up. The index is dropped again unless
    ``keep`` is True. Any index of that name that exists beforehand is dropped first.
    """
    name = name or _default_name(table, columns)
    await drop_index(conn, name, schema=schema)

    async def run() -> None:
        await conn.fetch(sql, *args)

    before = await explain(conn, sql, *args)
    before_time = await time_async(run, warmup=1, repeat=repeat, label="before")
    await create_index(conn, table, columns, name=name, schema=schema)
    try:
        await conn.execute(f"ANALYZE {qualified(table, schema)}")
        after = await explain(conn, sql, *args)
        after_time = await time_async(run, warmup=1, repeat=repeat, label="after")
    finally:
        if not keep:
            await drop_index(conn, name, schema=schema)
    return IndexEffect(index=name, before=before, after=after, before_time=before_time, after_time=after_time)
