"""Exercises for notebook 03: a connection that always goes back, and a query that cannot hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise, service_urls
from perf.pool import Pool, create_pool

BAD_SQL = "SELECT 1 / $1::int"  # with 0: division by zero, an error raised while a connection is held


@exercise("03.release", title="every borrowed connection goes back, even on an error", answer="run_query",
          nudge="Follow a connection when the query raises: which line gives it back, and does that line run?")
async def release(run_query: Callable[[Pool[Any], int], Awaitable[Any]], *, settings: Settings,
                  database_url: str | None = None, **_ignored: Any) -> Report:
    """``await run_query(pool, x)`` runs :data:`BAD_SQL` with ``x`` on a connection from ``pool`` and
    returns the value; for ``x = 0`` it may raise, but the connection must be back in the pool."""
    report = Report(hint="Giving the connection back must not depend on the query succeeding: tie the release "
                         "to leaving the block, however it is left (the pool's own context manager does this).")
    db_url, _ = service_urls(settings, database_url, "redis://unused")
    pool = await create_pool(db_url, min_size=1, max_size=3)
    try:
        value = await call_learner(report, "run_query(pool, 1)", run_query, pool, 1, hint=report.hint)
        report.require("returns the query's value", value == 1, repr(value))
        for _ in range(5):  # more failures than the pool has connections
            try:
                await asyncio.wait_for(run_query(pool, 0), 2.0)
            except TimeoutError:
                report.require("a failing query does not wait forever for a connection", False,
                               "timed out waiting: earlier failures kept the connections")
                return report
            except Exception:  # the error itself is fine: the point is where the connection went
                pass
        stats = pool.stats()
        report.require("no connection still borrowed after 5 failed queries", stats.in_use == 0,
                       f"{stats.in_use} still in use")
    finally:
        await pool.close(timeout=0.5)  # leaked connections are terminated (and named) at once
    return report


@exercise("03.timeout", title="a slow query cannot hold a connection forever", answer="bounded_fetch",
          nudge="Who stops the query when the time is up: the client, the server, or nobody?")
async def timeout(bounded_fetch: Callable[[Pool[Any], str, float], Awaitable[Any]], *, settings: Settings,
                  database_url: str | None = None, **_ignored: Any) -> Report:
    """``await bounded_fetch(pool, sql, seconds)`` runs ``sql`` but gives up after ``seconds``
    (raising any exception), and leaves the connection usable and back in the pool."""
    report = Report(hint="Giving up on the client is not enough: the statement goes on running on the server "
                         "and the connection stays busy. Let the driver cancel it on the server when the time "
                         "is up (its query methods can), and give the connection back however the call ends.")
    db_url, _ = service_urls(settings, database_url, "redis://unused")
    async with create_pool(db_url, min_size=1, max_size=1) as pool:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(bounded_fetch(pool, "SELECT pg_sleep(5)", 0.2), 3.0)
            gave_up = False
        except NotImplementedError:
            raise
        except TimeoutError:
            gave_up = time.perf_counter() - t0 < 2.5
        except Exception:
            gave_up = True
        elapsed = time.perf_counter() - t0
        report.require("gives up on a 5 s query after about 0.2 s", gave_up and elapsed < 2.0, f"{elapsed:.2f} s")
        stats = pool.stats()
        report.require("the connection is back in the pool", stats.in_use == 0, f"{stats.in_use} in use")
        try:
            async with pool.acquire() as conn:
                ok = await asyncio.wait_for(conn.fetchval("SELECT 42"), 2.0) == 42
        except Exception as exc:
            ok = False
            report.hint += f" (the next query failed: {type(exc).__name__})"
        report.require("the next query on that pool works at once", ok)
    return report
