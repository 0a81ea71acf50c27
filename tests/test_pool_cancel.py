"""perf.pool: cancelling callers while they wait or while they use a connection leaks nothing."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg

from perf.pool import Pool, create_pool
from perf.pool.asyncpg_adapter import server_connections


async def _settle(pool: Pool, admin: asyncpg.Connection, app: str) -> dict[str, int]:
    """Wait until nothing is borrowed and PostgreSQL shows only idle backends; return its counts."""
    server: dict[str, int] = {}
    for _ in range(200):
        server = await server_connections(admin, app)
        stats = pool.stats()
        if stats.in_use == 0 and set(server) <= {"idle"} and server.get("idle", 0) == stats.size:
            break
        await asyncio.sleep(0.02)
    return server


async def test_cancel_while_waiting_leaks_nothing(database_url: str, pg_conn: asyncpg.Connection) -> None:
    app = f"pooltest-{uuid.uuid4().hex[:10]}"
    async with create_pool(database_url, min_size=2, max_size=2,
                           server_settings={"application_name": app}) as pool:
        held = [await pool.acquire(), await pool.acquire()]
        waiters = [asyncio.create_task(pool.acquire().__aenter__()) for _ in range(20)]
        await asyncio.sleep(0.02)
        assert pool.stats().waiting == 20
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert pool.stats().waiting == 0
        for conn in held:
            await pool.release(conn)
        server = await _settle(pool, pg_conn, app)
        stats = pool.stats()
        assert (stats.size, stats.idle, stats.in_use, stats.created) == (2, 2, 0, 2)
        assert server == {"idle": 2}


async def test_cancelled_just_as_a_connection_was_handed_over(database_url: str) -> None:
    """The releaser hands the connection to a waiter that is cancelled before it runs."""
    # reset="none": the hand-over happens inside release() itself (no reset round trip first)
    async with create_pool(database_url, min_size=1, max_size=1, reset="none") as pool:
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.acquire().__aenter__())
        await asyncio.sleep(0.01)
        await pool.release(held)  # sets the waiter's future: the connection is "in flight"
        waiter.cancel()  # ... and the waiter never gets to run with it
        await asyncio.gather(waiter, return_exceptions=True)
        assert waiter.cancelled()
        stats = pool.stats()
        assert (stats.size, stats.idle, stats.in_use, stats.waiting) == (1, 1, 0, 0)
        async with pool.acquire(timeout=1) as conn:
            assert conn is held


async def test_cancel_during_use_leaks_nothing(database_url: str, pg_conn: asyncpg.Connection) -> None:
    app = f"pooltest-{uuid.uuid4().hex[:10]}"
    async with create_pool(database_url, min_size=0, max_size=5,
                           server_settings={"application_name": app}) as pool:
        async def use(i: int) -> None:
            async with pool.acquire() as conn:
                if i % 2:
                    await conn.execute("BEGIN")
                await conn.fetchval("SELECT pg_sleep(10)")

        tasks = [asyncio.create_task(use(i)) for i in range(5)]
        # Cancel only once PostgreSQL runs all five queries: a cancel request that reaches a backend
        # still reading its query is ignored by the server (it cancels "the running query", and none
        # runs yet), so pg_sleep(10) runs on, release's cleanup outlives its 5 s reset_timeout and the
        # pool rightly discards that connection. On a loaded machine 0.2 s was not always enough.
        for _ in range(500):
            if await server_connections(pg_conn, app) == {"active": 5}:
                break
            await asyncio.sleep(0.01)
        assert await server_connections(pg_conn, app) == {"active": 5}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server = await _settle(pool, pg_conn, app)
        stats = pool.stats()
        assert (stats.size, stats.in_use, stats.idle) == (5, 0, 5)
        assert server == {"idle": 5}  # no backend still running pg_sleep or idle in transaction
        held = [await pool.acquire() for _ in range(5)]
        assert [await c.fetchval("SELECT 1") for c in held] == [1] * 5
        for conn in held:
            await pool.release(conn)


async def test_random_cancellation_storm_keeps_the_books_straight(database_url: str,
                                                                  pg_conn: asyncpg.Connection) -> None:
    app = f"pooltest-{uuid.uuid4().hex[:10]}"
    rng = random.Random(7)
    async with create_pool(database_url, min_size=1, max_size=4,
                           server_settings={"application_name": app}) as pool:
        async def use() -> None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    await conn.fetchval("SELECT pg_sleep($1)", rng.random() / 50)

        tasks = [asyncio.create_task(use()) for _ in range(120)]
        for _ in range(60):
            await asyncio.sleep(rng.random() / 200)
            rng.choice(tasks).cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert any(isinstance(r, asyncio.CancelledError) for r in results)
        assert not [r for r in results if r is not None and not isinstance(r, asyncio.CancelledError)]
        server = await _settle(pool, pg_conn, app)
        stats = pool.stats()
        assert stats.in_use == 0 and stats.waiting == 0 and stats.idle == stats.size <= 4
        assert server == {"idle": stats.size}
        assert stats.created - stats.closed == stats.size


async def test_cancelled_again_while_releasing_still_returns_the_connection(database_url: str) -> None:
    """A second cancellation lands while release is doing its round trips (a slow reset here)."""
    reset_done = asyncio.Event()

    async def slow_reset(conn: asyncpg.Connection) -> None:
        await conn.fetchval("SELECT pg_sleep(0.2)")
        reset_done.set()

    async with create_pool(database_url, min_size=1, max_size=1, reset=slow_reset) as pool:
        started = asyncio.Event()

        async def use() -> None:
            async with pool.acquire() as conn:
                await conn.execute("BEGIN")
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(use())
        await started.wait()
        task.cancel()
        await asyncio.sleep(0.05)  # now inside release: rolling back, then the slow reset
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.wait_for(reset_done.wait(), 2)
        await asyncio.sleep(0.01)
        stats = pool.stats()
        assert (stats.in_use, stats.idle, stats.size, stats.rolled_back) == (0, 1, 1, 1)
        async with pool.acquire(timeout=1) as conn:
            assert not conn.is_in_transaction()
