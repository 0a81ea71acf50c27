"""perf.pool.outcome against real PostgreSQL: what pg_xact_status says, and run_write on a plain asyncpg pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from perf.pool.outcome import XID_SQL, commit_status, run_write
from tests._pg_cut import CommitCutter

Connect = Callable[..., Awaitable[asyncpg.Connection]]


async def test_commit_status_tells_committed_from_rolled_back(pg_connect: Connect) -> None:
    conn = await pg_connect()
    async with conn.transaction():
        committed = await conn.fetchval(XID_SQL)
    tx = conn.transaction()
    await tx.start()
    rolled_back = await conn.fetchval(XID_SQL)
    await tx.rollback()
    assert await commit_status(conn, committed) == "committed"
    assert await commit_status(conn, rolled_back) == "aborted"


async def test_a_transaction_still_running_without_its_client_is_ended_and_counts_as_not_committed(
        pg_connect: Connect) -> None:
    """A cut network, not a restart: the old backend still holds the transaction open."""
    orphan, asker = await pg_connect(), await pg_connect()
    await asker.execute("CREATE TABLE t (v int)")
    tx = orphan.transaction()
    await tx.start()
    await orphan.execute("INSERT INTO t VALUES (1)")
    xid = await orphan.fetchval(XID_SQL)
    assert await asker.fetchval("SELECT pg_xact_status($1::xid8)", xid) == "in progress"
    assert await commit_status(asker, xid, wait=5) == "aborted"
    assert await asker.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                                orphan.get_server_pid()) == 0  # its backend was ended
    assert await asker.fetchval("SELECT count(*) FROM t") == 0


async def test_a_transaction_id_this_server_never_gave_did_not_commit_here(pg_connect: Connect) -> None:
    conn = await pg_connect()
    future = int(await conn.fetchval(XID_SQL)) + 10_000_000  # e.g. after a failover to a replica it never reached
    assert await commit_status(conn, future) == "aborted"


async def test_run_write_on_an_asyncpg_pool_settles_a_lost_commit_answer(database_url: str, pg_schema: str,
                                                                          pg_connect: Connect) -> None:
    check = await pg_connect()
    await check.execute("CREATE TABLE t (v int)")
    calls = 0

    async def insert(conn: asyncpg.Connection) -> str:
        nonlocal calls
        calls += 1
        await conn.execute("INSERT INTO t VALUES (1)")
        return "done"

    async with CommitCutter(database_url, after=b"INSERT INTO t") as relay, \
            asyncpg.create_pool(relay.url, min_size=0, server_settings={"search_path": pg_schema}) as pool:
        assert await run_write(pool.acquire, insert) == "done"
        assert relay.cut == 1 and calls == 1
        relay.arm()
        assert await run_write(pool.acquire, insert) == "done"
        assert relay.cut == 2 and calls == 2
    assert await check.fetchval("SELECT count(*) FROM t") == 2  # each write once


async def test_run_write_raises_what_is_not_a_broken_connection_without_running_again(database_url: str,
                                                                                       pg_schema: str) -> None:
    calls = 0

    async def wrong(conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        await conn.execute("SELECT * FROM no_such_table")

    async with asyncpg.create_pool(database_url, min_size=0, server_settings={"search_path": pg_schema}) as pool:
        with pytest.raises(asyncpg.UndefinedTableError):
            await run_write(pool.acquire, wrong)
    assert calls == 1
