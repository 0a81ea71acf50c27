"""Exercises for notebook 02: the missing index, an N+1 turned into one query, a batched insert."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg

from perf.config import Settings
from perf.db.plans import explain
from perf.db.queries import get_products
from perf.db.schema import ensure_seeded
from perf.exercises.core import Report, call_learner, exercise, scratch_names, service_urls

PRODUCTS = 20_000  # enough rows that the planner prefers an index when there is a useful one
#: The slow query of exercise 02.index: the 20 cheapest products above a price.
SLOW_QUERY = "SELECT id, name, price FROM products WHERE price >= $1 ORDER BY price LIMIT 20"
SLOW_ARGS = (900,)


@asynccontextmanager
async def _catalog(key: str, settings: Settings, database_url: str | None) -> AsyncIterator[asyncpg.Connection]:
    db_url, _ = service_urls(settings, database_url, "redis://unused")
    schema, _ = scratch_names(key)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}; SET search_path TO {schema}")
        await ensure_seeded(conn, products=PRODUCTS, categories=20, images_per_product=2, seed=13)
        await conn.execute("ANALYZE")
        yield conn
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.IGNORECASE)


@exercise("02.index", title="find and add the missing index", answer="INDEX_SQL",
          nudge="The plan of the slow query names the step that reads every row: which column does it test?")
async def index(index_sql: str, *, settings: Settings, database_url: str | None = None, **_ignored: Any) -> Report:
    """``index_sql`` is ONE ``CREATE INDEX`` statement that lets :data:`SLOW_QUERY` (with
    ``$1 = 900``) run without a sequential scan of ``products`` and without sorting."""
    report = Report(hint="Run `explain(conn, SLOW_QUERY, 900)` and read the plan: which column does the WHERE "
                         "filter on and the ORDER BY sort by? An index on it gives both the rows and the order.")
    if not report.require("a CREATE INDEX statement", isinstance(index_sql, str)
                          and _CREATE_INDEX.match(index_sql) is not None and ";" not in index_sql.strip().rstrip(";"),
                          repr(index_sql)[:80]):
        return report
    async with _catalog("02.index", settings, database_url) as conn:
        before = await explain(conn, SLOW_QUERY, *SLOW_ARGS)
        try:
            await conn.execute(index_sql)
        except asyncpg.PostgresError as exc:
            report.require("the statement runs", False, f"{type(exc).__name__}: {exc}")
            return report
        await conn.execute("ANALYZE products")
        after = await explain(conn, SLOW_QUERY, *SLOW_ARGS)
        report.require("no sequential scan of products", "products" not in after.seq_scanned,
                       " → ".join(after.node_types))
        report.require("no separate sort step (the index gives the order)", "Sort" not in after.node_types,
                       " → ".join(after.node_types))
        report.require("reads fewer buffers than without the index",
                       after.shared_hit + after.shared_read < before.shared_hit + before.shared_read,
                       f"{before.shared_hit + before.shared_read} → {after.shared_hit + after.shared_read}")
    return report


class _CountingConnection:
    """The learner's connection: the real one, counting statements sent (round trips)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.statements = 0

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.statements += 1
        return await self._conn.fetch(sql, *args)  # type: ignore[no-any-return]

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self.statements += 1
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        self.statements += 1
        return str(await self._conn.execute(sql, *args))

    async def executemany(self, sql: str, args: Any) -> None:
        self.statements += 1  # one prepared statement, its argument tuples streamed in one round trip
        await self._conn.executemany(sql, args)

    async def copy_records_to_table(self, table: str, **kwargs: Any) -> str:
        self.statements += 1
        return str(await self._conn.copy_records_to_table(table, **kwargs))

    def transaction(self, **kwargs: Any) -> Any:
        """BEGIN and COMMIT come with a batch; they are not counted."""
        return self._conn.transaction(**kwargs)


Loader = Callable[[Any, Sequence[int]], Awaitable[list[dict[str, Any]]]]


@exercise("02.one_query", title="turn an N+1 into one query", answer="products_with_images",
          nudge="Count the round trips the starter makes for 12 ids; section 5 shows the same data fetched at once.")
async def one_query(products_with_images: Loader, *, settings: Settings, database_url: str | None = None,
                    **_ignored: Any) -> Report:
    """``await products_with_images(conn, ids)`` returns what :func:`perf.db.queries.get_products`
    returns (ordered by id; ``category`` name and ``image_urls`` by position) in ONE statement."""
    report = Report(hint="One statement can bring a product, its category's name and all its images together: "
                         "combine the three tables, keep products that have no image, gather each product's "
                         "image urls into one list in their order, and pass all the ids as one array parameter.")
    ids = [3, 1, 4, 15, 9, 2, 6, 5, 35, 8, 97, 10_000_000]  # the last one does not exist
    async with _catalog("02.one_query", settings, database_url) as conn:
        counting = _CountingConnection(conn)
        got = await call_learner(report, "products_with_images(conn, ids)", products_with_images, counting, ids,
                                 hint=report.hint)
        want = await get_products(conn, ids)
        rows = [dict(r) for r in got] if isinstance(got, list) else got
        same = isinstance(rows, list) and len(rows) == len(want) and all(
            {k: r.get(k) for k in ("id", "name", "category", "image_urls")}
            == {k: w[k] for k in ("id", "name", "category", "image_urls")} for r, w in zip(rows, want, strict=True))
        report.require(f"the same {len(want)} products, categories and image urls as get_products", same,
                       f"{len(rows) if isinstance(rows, list) else type(rows).__name__} rows")
        report.require("one statement for all of them", counting.statements == 1, f"{counting.statements} statements")
    return report


BATCH_ROWS = 5_000
Inserter = Callable[[Any, list[tuple[str, int, Decimal]]], Awaitable[None]]


@exercise("02.batch", title="batch a slow insert path", answer="insert_products",
          nudge="Count the statements the starter sends for 5,000 rows; section 1 measured the other ways.")
async def batch(insert_products: Inserter, *, settings: Settings, database_url: str | None = None,
                **_ignored: Any) -> Report:
    """``await insert_products(conn, rows)`` stores ``rows`` (``(name, category_id, price)`` tuples) in
    ``products``, sending at most 3 statements for 5,000 rows, and all or nothing: when one row is bad
    (a category that does not exist) no row of that call is stored and the error reaches the caller."""
    report = Report(hint="Send the rows together: one statement that carries every row (PostgreSQL's bulk "
                         "load, or one prepared INSERT run for the whole list of argument tuples). A single "
                         "statement is also a single transaction, so a bad row stops all of them.")
    rows = [(f"batch-{i}", 1 + i % 20, Decimal(f"{i % 500}.99")) for i in range(BATCH_ROWS)]
    async with _catalog("02.batch", settings, database_url) as conn:
        counting = _CountingConnection(conn)
        t0 = time.perf_counter()
        await call_learner(report, f"insert_products(conn, {BATCH_ROWS:,} rows)", insert_products, counting, rows,
                           hint=report.hint)
        seconds = time.perf_counter() - t0
        stored = await conn.fetchval("SELECT count(*) FROM products WHERE name LIKE 'batch-%'")
        report.require(f"all {BATCH_ROWS:,} rows stored once", stored == BATCH_ROWS, f"{stored:,} rows")
        report.require("in at most 3 statements", counting.statements <= 3,
                       f"{counting.statements:,} statements, {BATCH_ROWS / seconds:,.0f} rows/s")
        bad = [(f"bad-{i}", 1 + i % 20 if i != 50 else 999_999, Decimal("1.00")) for i in range(100)]
        try:
            await insert_products(_CountingConnection(conn), bad)
            raised = ""
        except Exception as exc:  # the error the caller must see
            raised = type(exc).__name__
        kept = await conn.fetchval("SELECT count(*) FROM products WHERE name LIKE 'bad-%'")
        report.require("a batch with one bad row raises and stores none of its rows", raised != "" and kept == 0,
                       f"{'raised ' + raised if raised else 'no error'}; {kept} of 100 rows stored")
    return report
