"""Side-by-side measurements shared by the 02_db notebook and ``python -m perf.bench.db``.

* :func:`race_inserts` — every insert strategy of :mod:`perf.db.writes` on the same rows,
  interleaved round by round (order shuffled), each into its own scratch table that is
  emptied, untimed, before every run.
* :func:`page_growth` — first page vs last page for OFFSET and keyset paging, interleaved.
* :func:`page_profile` — time per chunk while reading a whole table with each reader.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import pandas as pd

from perf.db.ident import quote_ident
from perf.db.queries import list_products_keyset, list_products_offset
from perf.db.reads import READERS, chunk_timings
from perf.db.schema import generate_products
from perf.db.writes import STRATEGIES, InsertStrategy
from perf.measure import Comparison, compare_async

__all__ = ["PRODUCT_COLUMNS", "page_growth", "page_profile", "product_rows", "race_inserts"]

#: Columns of :func:`product_rows` records (and of the scratch tables).
PRODUCT_COLUMNS = ("id", "category_id", "name", "price", "created_at", "description")


def product_rows(count: int, *, seed: int = 0, categories: int = 20) -> list[tuple[Any, ...]]:
    """``count`` reproducible product records shaped like ``products`` (ids 1..count)."""
    return list(generate_products(count, category_ids=list(range(1, categories + 1)), seed=seed))


async def race_inserts(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]], *,
                       strategies: Mapping[str, InsertStrategy] = STRATEGIES,
                       columns: Sequence[str] = PRODUCT_COLUMNS, like: str = "products",
                       repeat: int = 3, warmup: int = 1, batch_size: int | None = 1000,
                       baseline: str | None = None, seed: int = 0) -> Comparison:
    """Time each strategy writing ``rows``, interleaved; return a :class:`~perf.measure.Comparison`.

    Scratch tables ``race_<strategy>`` are created ``(LIKE <like> INCLUDING DEFAULTS
    INCLUDING CONSTRAINTS)`` in the current schema (no indexes, no foreign keys), emptied
    before every timed run, and dropped at the end. ``batch_size`` goes to the
    strategies that batch (executemany, unnest, copy); "rows_in_transaction" uses one
    transaction for all rows. Seconds in the samples are per whole write of ``rows``.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"repeat must be >= 1 and warmup >= 0, got repeat={repeat!r}, warmup={warmup!r}")
    names = list(strategies)
    baseline = baseline or names[0]
    if baseline not in strategies:
        raise ValueError(f"baseline {baseline!r} is not one of the strategies {names}")
    tables = {name: f"race_{name}" for name in names}
    for table in tables.values():
        await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
        await conn.execute(
            f"CREATE TABLE {quote_ident(table)} (LIKE {quote_ident(like)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )

    async def run(name: str) -> float:
        await conn.execute(f"TRUNCATE {quote_ident(tables[name])}")
        size = None if name == "rows_in_transaction" else batch_size
        t0 = time.perf_counter()
        written = await strategies[name](conn, tables[name], columns, rows, batch_size=size)
        elapsed = time.perf_counter() - t0
        if written != len(rows):
            raise AssertionError(f"{name} wrote {written} rows, expected {len(rows)}")
        return elapsed

    rng = random.Random(seed)
    samples = []
    try:
        for _ in range(warmup):
            for name in names:
                await run(name)
        for rnd in range(repeat):
            for name in rng.sample(names, len(names)):
                samples.append((name, rnd, await run(name)))
    finally:
        for table in tables.values():
            await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    frame = pd.DataFrame(samples, columns=["variant", "round", "seconds"])
    # Strategy order, not the shuffled run order, so summaries and charts list them as defined.
    frame = frame.sort_values(["variant", "round"],
                              key=lambda col: col.map(names.index) if col.name == "variant" else col)
    frame = frame.reset_index(drop=True)
    return Comparison(frame, baseline, meta={"rows": len(rows), "batch_size": batch_size})


async def page_growth(conn: asyncpg.Connection, *, limit: int = 100, repeat: int = 15,
                      warmup: int = 2) -> tuple[Comparison, dict[str, float]]:
    """Time the first and the last page of ``products`` by OFFSET and by keyset, interleaved.

    Returns the comparison and ``{"offset": last/first, "keyset": last/first}``: the
    median round-by-round growth from page one to the deepest page.
    """
    total = await conn.fetchval("SELECT count(*) FROM products")
    if total < 2 * limit:
        raise ValueError(f"products holds {total} rows; page_growth needs at least 2*limit={2 * limit}")
    last_offset = total - limit
    last_after = await conn.fetchval("SELECT id FROM products ORDER BY id OFFSET $1 LIMIT 1", last_offset - 1)
    variants = {
        "offset_first": lambda: list_products_offset(conn, offset=0, limit=limit),
        "offset_last": lambda: list_products_offset(conn, offset=last_offset, limit=limit),
        "keyset_first": lambda: list_products_keyset(conn, after_id=0, limit=limit),
        "keyset_last": lambda: list_products_keyset(conn, after_id=last_after, limit=limit),
    }
    comparison = await compare_async(variants, warmup=warmup, repeat=repeat, baseline="offset_first")
    growth = {
        "offset": comparison.ratio("offset_last", "offset_first"),
        "keyset": comparison.ratio("keyset_last", "keyset_first"),
    }
    return comparison, growth


async def page_profile(conn: asyncpg.Connection, table: str = "products", *, chunk_size: int = 1000,
                       key: Sequence[str] = ("id",), readers: Sequence[str] = tuple(READERS),
                       columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read all of ``table`` with each reader; one row per chunk: reader, page, rows, seconds."""
    frames = []
    for name in readers:
        if name not in READERS:
            raise ValueError(f"readers must be among {list(READERS)}, got {name!r}")
        chunks = READERS[name](conn, table, key=key, chunk_size=chunk_size, columns=columns)
        frames.append(await chunk_timings(chunks, label=name))
    return pd.concat(frames, ignore_index=True)
