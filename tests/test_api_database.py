"""The API's database seam: a read whose connection the server closes mid-query runs again; a write does not."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from perf.api.database import Database
from perf.api.errors import ServiceUnavailable


async def _terminate_when_running(database_url: str, tag: str) -> None:
    """What a fast shutdown does to one backend: terminate it while it runs the query tagged ``tag``."""
    admin = await asyncpg.connect(database_url)
    try:
        for _ in range(200):
            pids = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                                     f"%{tag}%")
            if pids:
                await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the query tagged {tag} never ran")
    finally:
        await admin.close()


@pytest.mark.parametrize("pool", ["perf", "asyncpg", "none"])
async def test_a_read_cut_off_by_the_server_runs_again_on_a_fresh_connection(database_url: str, pg_schema: str,
                                                                             pool: str) -> None:
    calls = 0

    async def query(conn: asyncpg.Connection) -> int:
        nonlocal calls
        calls += 1
        return int(await conn.fetchval(f"SELECT 7 FROM pg_sleep({0.5 if calls == 1 else 0}) /* read-{pool} */"))

    async with Database(database_url, schema=pg_schema, pool=pool) as db:  # type: ignore[arg-type]
        killer = asyncio.create_task(_terminate_when_running(database_url, f"read-{pool}"))
        assert await db.read(query) == 7
        await killer
        assert calls == 2  # the first attempt was cut off, the second answered
        assert db.errors == 1


async def test_a_write_cut_off_by_the_server_is_a_503_not_repeated(database_url: str, pg_schema: str) -> None:
    async with Database(database_url, schema=pg_schema) as db:
        killer = asyncio.create_task(_terminate_when_running(database_url, "a-write"))
        with pytest.raises(ServiceUnavailable):
            async with db.connection() as conn:
                await conn.execute("SELECT pg_sleep(0.5) /* a-write */")
        await killer
        assert db.errors == 1


async def test_a_read_with_no_connection_to_be_had_is_a_503_after_one_wait(pg_schema: str) -> None:
    # nothing listens on port 9 (discard): every connect is refused at once
    async with Database("postgresql://nobody@127.0.0.1:9/none", schema=pg_schema, pool="none",
                        connect_timeout=0.5) as db:
        with pytest.raises(ServiceUnavailable):
            await db.read(lambda conn: conn.fetchval("SELECT 1"))
        assert db.errors == 2  # refused is not a pool timeout: tried twice, each at once
