"""Memory of reading a big table: everything at once vs in chunks (keyset, cursor).

:func:`read_memory` reads ``limit`` rows of ``products`` with each strategy and records the
peak Python allocation while doing it (:func:`perf.measure.peak_memory_async`). The
consumer keeps only a running total, as a streaming export or an aggregation would, so
what the peak measures is what the *reader* holds: all rows for ``fetch_all``, one chunk
for the chunked readers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing

import asyncpg
import pandas as pd

from perf.db.reads import read_cursor, read_keyset
from perf.measure import peak_memory_async

Chunk = list[asyncpg.Record]


async def _fetch_all(conn: asyncpg.Connection, limit: int, chunk_size: int) -> AsyncIterator[Chunk]:
    # the seed's way: one fetch of every row, then iterate
    yield await conn.fetch("SELECT * FROM products ORDER BY id LIMIT $1", limit)


async def _first(chunks: AsyncGenerator[Chunk, None], limit: int) -> AsyncIterator[Chunk]:
    """The first ``limit`` rows of a chunked reader; closing it at once ends its cursor or query."""
    seen = 0
    async with aclosing(chunks):
        async for chunk in chunks:
            yield chunk[: limit - seen]
            seen += len(chunk)
            if seen >= limit:
                return


def _keyset(conn: asyncpg.Connection, limit: int, chunk_size: int) -> AsyncIterator[Chunk]:
    return _first(read_keyset(conn, "products", chunk_size=chunk_size), limit)


def _cursor(conn: asyncpg.Connection, limit: int, chunk_size: int) -> AsyncIterator[Chunk]:
    return _first(read_cursor(conn, "products", chunk_size=chunk_size), limit)


STRATEGIES: dict[str, Callable[[asyncpg.Connection, int, int], AsyncIterator[Chunk]]] = {
    "fetch all": _fetch_all, "keyset chunks": _keyset, "server-side cursor": _cursor}


async def read_memory(conn: asyncpg.Connection, *, sizes: Sequence[int], chunk_size: int = 1_000,
                      repeat: int = 3) -> pd.DataFrame:
    """Peak memory per strategy and row count: one row per (strategy, rows, round).

    Columns ``strategy``, ``rows``, ``round``, ``python_peak_mib``, ``rss_peak_mib``,
    ``rows_read`` (what the consumer saw: equal across strategies, or the run is wrong).
    Strategies run interleaved within each round, in a rotating order.
    """
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes={sizes!r} must be row counts >= 1, e.g. (1_000, 10_000, 50_000)")
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r} must be an int >= 1")
    if not isinstance(repeat, int) or repeat < 1:
        raise ValueError(f"repeat={repeat!r} must be an int >= 1")
    names = list(STRATEGIES)
    rows = []
    for round_ in range(repeat):
        for n in sizes:
            for name in names[round_ % len(names):] + names[: round_ % len(names)]:
                async def consume(name: str = name, n: int = n) -> int:
                    total = 0
                    async for chunk in STRATEGIES[name](conn, n, chunk_size):
                        total += len(chunk)
                    return total
                peak = await peak_memory_async(consume)
                rows.append({"strategy": name, "rows": n, "round": round_, "python_peak_mib": peak.python_peak_mib,
                             "rss_peak_mib": peak.rss_peak_mib, "rows_read": peak.result})
    return pd.DataFrame(rows)
