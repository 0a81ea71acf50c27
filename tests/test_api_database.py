"""The API's database seam: a read whose connection the server closes mid-query runs again; a write cut
off is settled by asking PostgreSQL whether it committed (then answered), or run again (it did not)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest

from perf.api.database import Database
from perf.api.errors import ServiceUnavailable
from perf.api.products import ProductService
from perf.api.settings import ApiMode
from perf.api.validation import Paging
from perf.cache.multilevel import MultiLevelCache
from perf.cache.pg_invalidation import PgInvalidationBus
from perf.db.schema import ensure_seeded
from tests._pg_cut import CommitCutter


async def _running(admin: asyncpg.Connection, tag: str) -> int:
    """The pid of the backend running the query tagged ``tag``, once it runs."""
    for _ in range(200):
        pid = await admin.fetchval("SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                                   f"%{tag}%")
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError(f"the query tagged {tag} never ran")


async def _terminate_when_running(database_url: str, tag: str) -> None:
    """What a fast shutdown does to one backend: terminate it while it runs the query tagged ``tag``."""
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", await _running(admin, tag))
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


async def _writes_table(database_url: str, schema: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    await conn.execute("CREATE TABLE writes (id serial PRIMARY KEY, v text NOT NULL)")
    return conn


@pytest.mark.parametrize("pool", ["perf", "asyncpg", "none"])
async def test_a_write_cut_off_before_its_commit_runs_again_and_is_applied_once(database_url: str, pg_schema: str,
                                                                               pool: str) -> None:
    calls = 0

    async def insert(conn: asyncpg.Connection) -> int:
        nonlocal calls
        calls += 1
        row_id = int(await conn.fetchval("INSERT INTO writes (v) VALUES ('a') RETURNING id"))
        await conn.execute(f"SELECT pg_sleep({0.5 if calls == 1 else 0}) /* write-{pool} */")  # cut here, once
        return row_id

    check = await _writes_table(database_url, pg_schema)
    try:
        async with Database(database_url, schema=pg_schema, pool=pool) as db:  # type: ignore[arg-type]
            killer = asyncio.create_task(_terminate_when_running(database_url, f"write-{pool}"))
            row_id = await db.write(insert)
            await killer
            assert calls == 2 and db.errors == 1  # cut before COMMIT: not committed, so run again
        assert [r["id"] for r in await check.fetch("SELECT id FROM writes")] == [row_id]  # once
    finally:
        await check.close()


@pytest.mark.parametrize("pool", ["perf", "asyncpg", "none"])
async def test_a_write_whose_commit_answer_was_lost_is_answered_as_committed_and_not_run_again(
        database_url: str, pg_schema: str, pool: str) -> None:
    calls = 0

    async def insert(conn: asyncpg.Connection) -> int:
        nonlocal calls
        calls += 1
        return int(await conn.fetchval("INSERT INTO writes (v) VALUES ('b') RETURNING id"))

    check = await _writes_table(database_url, pg_schema)
    try:
        # PostgreSQL commits, then the relay drops its answer and aborts the connection
        async with CommitCutter(database_url, after=b"INSERT INTO writes") as relay, \
                Database(relay.url, schema=pg_schema, pool=pool) as db:  # type: ignore[arg-type]
            row_id = await db.write(insert)
            assert relay.cut == 1 and db.errors == 1  # the COMMIT's answer was lost...
            assert calls == 1  # ...pg_xact_status said committed: answered with its result, not run again
        assert [r["id"] for r in await check.fetch("SELECT id FROM writes")] == [row_id]
    finally:
        await check.close()


async def test_a_write_cut_off_twice_is_a_503_and_applied_nowhere(database_url: str, pg_schema: str) -> None:
    calls = 0

    async def insert(conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        await conn.execute("INSERT INTO writes (v) VALUES ('c')")
        await conn.execute(f"SELECT pg_sleep(0.5) /* twice-{calls} */")

    async def kill_both() -> None:
        for attempt in (1, 2):
            await _terminate_when_running(database_url, f"twice-{attempt}")

    check = await _writes_table(database_url, pg_schema)
    try:
        async with Database(database_url, schema=pg_schema) as db:
            killer = asyncio.create_task(kill_both())
            with pytest.raises(ServiceUnavailable):
                await db.write(insert)
            await killer
            assert calls == 2 and db.errors == 2  # one retry only
        assert await check.fetchval("SELECT count(*) FROM writes") == 0
    finally:
        await check.close()


async def test_a_create_whose_commit_answer_was_lost_answers_the_product_once_and_invalidates(
        database_url: str, redis_url: str, redis_prefix: str, pg_schema: str) -> None:
    """The product's own path: one row, the product as GET shows it, and the cached list fresh after."""
    setup = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
    try:
        await ensure_seeded(setup, products=5)
        async with MultiLevelCache(redis_url, namespace=redis_prefix.rstrip(":")) as cache, \
                CommitCutter(database_url, after=b"INSERT INTO products") as relay, \
                Database(relay.url, schema=pg_schema) as db, PgInvalidationBus(database_url, cache) as bus:
            service = ProductService(db, cache, ApiMode.parse("all"), bus=bus)
            first_page = Paging(page=1, per_page=50, category=None, after=None)
            before = await service.list(first_page)  # cached now, under list:all
            created = await service.create({"category_id": 1, "name": "cut-commit", "price": Decimal("5.00"),
                                            "image_urls": ["https://img.example/1.png"]})
            assert relay.cut == 1 and db.errors == 1
            assert created == await service.get(created["id"])
            assert (await service.list(first_page))["total"] == before["total"] + 1  # invalidated after commit
        assert await setup.fetchval("SELECT count(*) FROM products WHERE name = 'cut-commit'") == 1
    finally:
        await setup.close()


async def test_with_no_connection_to_be_had_a_read_or_write_is_a_503_after_one_wait(pg_schema: str) -> None:
    # nothing listens on port 9 (discard): every connect is refused at once
    async with Database("postgresql://nobody@127.0.0.1:9/none", schema=pg_schema, pool="none",
                        connect_timeout=0.5) as db:
        with pytest.raises(ServiceUnavailable):
            await db.read(lambda conn: conn.fetchval("SELECT 1"))
        assert db.errors == 2  # refused is not a pool timeout: tried twice, each at once
        with pytest.raises(ServiceUnavailable):
            await db.write(lambda conn: conn.fetchval("SELECT 1"))
        assert db.errors == 4  # a write that never had a connection sent nothing: tried again the same way


async def _cut_with_the_whole_pool(db: Database, admin: asyncpg.Connection, tag: str, kind: str) -> int:
    """Run a read or write that is cut off together with every other connection of ``db``'s pool."""
    pids: set[int] = set()

    async def note(conn: asyncpg.Connection) -> None:
        pids.add(conn.get_server_pid())
        await conn.execute("SELECT pg_sleep(0.005)")

    await asyncio.gather(*(db.read(note) for _ in range(4)))  # four idle connections in the pool
    calls = 0

    async def work(conn: asyncpg.Connection) -> int:
        nonlocal calls
        calls += 1
        pids.add(conn.get_server_pid())
        await conn.execute(f"SELECT pg_sleep({0.2 if calls == 1 else 0}) /* {tag} */")
        return calls

    async def kill_all() -> None:  # every backend of this pool at once, as a fast shutdown does
        await _running(admin, tag)
        await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p", list(pids))

    killer = asyncio.create_task(kill_all())
    result = await (db.write(work) if kind == "write" else db.read(work))
    await killer
    return result


async def test_a_retry_skips_connections_the_server_dropped_with_the_one_that_failed(database_url: str,
                                                                                     pg_schema: str) -> None:
    """A restart drops every connection at once; the notices arrive one by one. The retry must not be
    lent one whose backend is about to go too (27 writes and 13 reads in 100 such trials failed so,
    before the retry waited a moment and had its connection answer first)."""
    async with Database(database_url, schema=pg_schema, min_size=4, max_size=10) as db:
        admin = await asyncpg.connect(database_url)
        try:
            for trial in range(20):
                kind = "write" if trial % 2 else "read"
                assert await _cut_with_the_whole_pool(db, admin, f"all-{trial}", kind) == 2  # ran twice, answered
        finally:
            await admin.close()
