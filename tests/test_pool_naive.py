"""The seed's pool fails as the notebook says it does; perf.pool passes the same scenarios."""

from __future__ import annotations

import asyncpg

from perf.pool import create_pool
from perf.pool.demo_failures import drive, next_borrower_after_cancel, waits_behind_slow_connect
from perf.pool.naive import SeedPool, SeedPoolTypoFixed


async def test_seed_pool_loses_connections_then_hangs(database_url: str) -> None:
    seed = SeedPool(lambda: asyncpg.connect(database_url), min_size=1, max_size=3)
    try:
        await seed.initialize()
        outcomes = await drive(seed, attempts=7, timeout=0.1)
        assert outcomes == ["TypeError", "ok", "TypeError", "ok", "TypeError", "hung", "hung"]
        assert (seed.size, seed.pool.qsize(), len(seed.in_use)) == (3, 0, 0)  # 3 open, none reachable
        assert not any(conn.is_closed() for conn in seed.created)
    finally:
        await seed.close_everything()


async def test_perf_pool_survives_the_same_drive(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=3) as pool:
        assert await drive(pool, attempts=7, timeout=1) == ["ok"] * 7
        assert pool.stats().created == 1


async def _slow_init(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_sleep(0.3)")


async def test_seed_lock_makes_everyone_wait_for_a_slow_connect(database_url: str) -> None:
    async def slow_connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(database_url)
        await _slow_init(conn)
        return conn

    seed = SeedPoolTypoFixed(slow_connect, min_size=1, max_size=2)
    try:
        await seed.initialize()
        seed_result = await waits_behind_slow_connect(seed, callers=10)
    finally:
        await seed.close_everything()
    async with create_pool(database_url, min_size=1, max_size=2, init=_slow_init) as pool:
        ours = await waits_behind_slow_connect(pool, callers=10)
    assert seed_result.waits.percentile(50) > 0.15  # stuck behind the connect, under the lock
    assert ours.waits.percentile(50) < 0.05  # served by the idle connection meanwhile
    assert ours.slow_connect_seconds >= 0.3


async def test_seed_hands_the_next_borrower_a_dirty_connection(database_url: str) -> None:
    seed = SeedPoolTypoFixed(lambda: asyncpg.connect(database_url), min_size=1, max_size=1)
    try:
        await seed.initialize()
        seed_says = await next_borrower_after_cancel(seed, query_seconds=2)
    finally:
        await seed.close_everything()
    assert seed_says.startswith("in a transaction: True; SELECT 1 -> InFailedSQLTransactionError")
    async with create_pool(database_url, min_size=1, max_size=1) as pool:
        assert await next_borrower_after_cancel(pool, query_seconds=2) == "in a transaction: False; SELECT 1 -> 1"
        assert pool.stats().rolled_back == 1
