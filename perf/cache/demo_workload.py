"""A real slow loader for the caching notebook and benchmark: a PostgreSQL aggregate.

:func:`create_catalog` builds ``<schema>.catalog`` (products with a category, price and
stock) idempotently; :func:`load_category_report` runs a deliberately heavy aggregate
(a percentile and a stddev over every product of a category) that costs milliseconds,
and returns a realistic JSON-able payload (the report plus the category's top products).
"""

from __future__ import annotations

import random
import re
from typing import Any

import asyncpg

CATEGORIES = 20
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _schema(schema: str) -> str:
    if not _IDENT.match(schema):
        raise ValueError(f"schema={schema!r} must be a lower-case SQL identifier such as 'nb_cache'")
    return schema


async def create_catalog(conn: asyncpg.Connection, *, schema: str, rows: int) -> int:
    """Create ``schema.catalog`` with ``rows`` products unless it already has exactly that many;
    returns the row count. Safe to call from every run (and concurrently: an advisory lock guards it)."""
    if rows < CATEGORIES:
        raise ValueError(f"rows={rows!r} must be >= {CATEGORIES} (one product per category at least)")
    schema = _schema(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"perf.cache.catalog:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"""CREATE TABLE IF NOT EXISTS {schema}.catalog (
            id bigint PRIMARY KEY, category int NOT NULL, name text NOT NULL,
            price numeric(10, 2) NOT NULL, stock int NOT NULL, description text NOT NULL)""")
        if await conn.fetchval(f"SELECT count(*) FROM {schema}.catalog") != rows:
            await conn.execute(f"TRUNCATE {schema}.catalog")
            await conn.execute(f"""
                INSERT INTO {schema}.catalog
                SELECT g, g % $2, 'product ' || g, round((random() * 500 + 1)::numeric, 2),
                       (random() * 1000)::int, repeat(md5(g::text), 4)
                FROM generate_series(1, $1) AS g""", rows, CATEGORIES)
            await conn.execute(f"ANALYZE {schema}.catalog")
    return rows


async def load_category_report(conn: asyncpg.Connection | asyncpg.Pool, category: int, *,
                               schema: str, top: int = 20) -> dict[str, Any]:
    """The slow query: per-category price statistics plus its ``top`` most expensive products."""
    schema = _schema(schema)
    stats = await conn.fetchrow(f"""
        SELECT count(*) AS products, avg(price)::float8 AS avg_price,
               stddev_samp(price)::float8 AS stddev_price,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY price)::float8 AS p90_price,
               sum(stock)::bigint AS stock, count(DISTINCT left(description, 3)) AS variants
        FROM {schema}.catalog WHERE category = $1""", category)
    products = await conn.fetch(f"""
        SELECT id, name, price::float8 AS price, stock, description FROM {schema}.catalog
        WHERE category = $1 ORDER BY price DESC, id LIMIT $2""", category, top)
    return {"category": category, **dict(stats), "top": [dict(p) for p in products]}


async def load_product(conn: asyncpg.Connection | asyncpg.Pool, product_id: int, *,
                       schema: str) -> dict[str, Any] | None:
    """One product by primary key (a fast loader), or None."""
    row = await conn.fetchrow(f"SELECT id, category, name, price::float8 AS price, stock, description "
                              f"FROM {_schema(schema)}.catalog WHERE id = $1", product_id)
    return None if row is None else dict(row)


def zipf_ids(n: int, *, population: int, s: float = 1.1, seed: int = 0) -> list[int]:
    """``n`` product ids in 1..population drawn with Zipf weights (id 1 the most popular): web traffic's shape."""
    if n < 0 or population < 1 or s <= 0:
        raise ValueError(f"n={n!r} must be >= 0, population={population!r} >= 1 and s={s!r} > 0")
    weights = [1.0 / rank ** s for rank in range(1, population + 1)]
    return random.Random(seed).choices(range(1, population + 1), weights=weights, k=n)
