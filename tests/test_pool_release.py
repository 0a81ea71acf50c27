"""perf.pool: what comes back on release (transactions, reset, broken connections)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from perf.pool import create_pool


async def test_connection_left_in_a_transaction_comes_back_clean(database_url: str, pg_schema: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1,
                           server_settings={"search_path": pg_schema}) as pool:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE t (x int)")
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO t VALUES (1)")
            # forgot to COMMIT
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM t") == 0
        assert pool.stats().rolled_back == 1 and pool.stats().created == 1


async def test_abandoned_transaction_object_and_failed_transaction(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1) as pool:
        async with pool.acquire() as conn:
            await conn.transaction().start()  # never committed nor rolled back
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
            async with conn.transaction():  # a real top-level transaction, not a savepoint
                assert await conn.fetchval("SELECT now() = statement_timestamp()") in (True, False)
            assert not conn.is_in_transaction()
            await conn.execute("BEGIN")
            with pytest.raises(asyncpg.DivisionByZeroError):
                await conn.fetchval("SELECT 1 / 0")  # transaction is now aborted
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        assert pool.stats().rolled_back == 2


async def test_reset_none_costs_no_round_trip_and_keeps_session_state(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, reset="none") as pool:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
        async with pool.acquire() as conn:
            # no RESET ALL on release (unlike asyncpg's default pool): session state survives
            assert await conn.fetchval("SHOW application_name") == "kept"
        assert pool.stats().rolled_back == 0 and pool.stats().session_resets == 0


async def test_reset_callback_runs_and_a_failing_reset_discards(database_url: str) -> None:
    calls = 0

    async def reset(conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("reset failed")
        await conn.execute("RESET ALL")

    async with create_pool(database_url, min_size=1, max_size=1, reset=reset) as pool:  # a custom reset
        async with pool.acquire() as conn:
            first_pid = conn.get_server_pid()
            await conn.execute("SET application_name = 'dirty'")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == first_pid
            assert await conn.fetchval("SHOW application_name") == ""
        async with pool.acquire() as conn:  # the previous reset failed: a new connection
            assert conn.get_server_pid() != first_pid
        stats = pool.stats()
        assert calls == 3 and stats.lost == 1 and stats.created == 2


async def test_killed_backend_is_replaced(database_url: str, pg_conn: asyncpg.Connection) -> None:
    async with create_pool(database_url, min_size=2, max_size=2) as pool:
        async with pool.acquire() as conn:
            idle_pid = conn.get_server_pid()
        assert await pg_conn.fetchval("SELECT pg_terminate_backend($1)", idle_pid)
        for _ in range(100):  # the client notices the closed socket on its next loop turn
            if conn.is_closed():
                break
            await asyncio.sleep(0.01)
        async with pool.acquire() as conn2:
            assert conn2.get_server_pid() != idle_pid
            assert await conn2.fetchval("SELECT 1") == 1

        # killed in the middle of a query: it fails, release discards, the slot is reopened
        async with pool.acquire() as conn3:
            busy_pid = conn3.get_server_pid()
            query = asyncio.create_task(conn3.fetchval("SELECT pg_sleep(5)"))
            await asyncio.sleep(0.1)
            await pg_conn.fetchval("SELECT pg_terminate_backend($1)", busy_pid)
            with pytest.raises((asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)):
                await query
        await asyncio.sleep(0.1)
        stats = pool.stats()
        assert stats.lost == 2 and stats.size == 2
        pids = set()
        held = [await pool.acquire() for _ in range(2)]
        for conn in held:
            assert await conn.fetchval("SELECT 1") == 1
            pids.add(conn.get_server_pid())
            await pool.release(conn)
        assert len(pids) == 2 and not pids & {idle_pid, busy_pid}


async def test_release_of_a_stranger_or_twice_is_an_error(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1) as pool:
        conn = await pool.acquire()
        await pool.release(conn)
        with pytest.raises(ValueError, match="released twice, or acquired elsewhere"):
            await pool.release(conn)
        stranger = await asyncpg.connect(database_url)
        try:
            with pytest.raises(ValueError, match="not borrowed from this pool"):
                await pool.release(stranger)
        finally:
            await stranger.close()
