"""perf.pool: acquiring and releasing against real PostgreSQL (limits, timeouts, fairness)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from perf.pool import PoolClosed, PoolTimeout, PoolTooManyWaiters, create_pool
from perf.pool.asyncpg_adapter import server_connections


@pytest.fixture
def app() -> str:
    return f"pooltest-{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_size": 5, "max_size": 2}, "min_size (5) is greater than max_size (2)"),
    ({"max_size": 0}, "max_size must be >= 1, got 0"),
    ({"min_size": -1}, "min_size must be >= 0, got -1"),
    ({"timeout": -1}, "timeout must be a number >= 0 or None, got -1"),
    ({"max_waiting": -3}, "max_waiting must be an int >= 0 or None, got -3"),
    ({"jitter": 1.5}, "jitter must be a fraction in [0, 1), got 1.5"),
    ({"idle_timeout": "soon"}, "idle_timeout must be a number >= 0 or None, got 'soon'"),
])
def test_bad_options_name_the_parameter_and_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        create_pool("postgresql://unused", **kwargs)
    assert message in str(info.value)


def test_create_pool_needs_a_dsn_or_an_adapter() -> None:
    with pytest.raises(ValueError, match="needs dsn"):
        create_pool()
    with pytest.raises(TypeError, match="max_size must be an int, got 2.5"):
        create_pool("postgresql://unused", max_size=2.5)  # type: ignore[arg-type]


async def test_await_and_async_with_forms(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=2, max_size=3)
    try:
        assert pool.stats().size == 2 and pool.stats().idle == 2
        conn = await pool.acquire()
        assert await conn.fetchval("SELECT 41 + 1") == 42
        await pool.release(conn)
        async with pool.acquire() as conn2:
            assert conn2 is conn  # the warmest connection is reused
            assert pool.stats().in_use == 1
    finally:
        report = await pool.close()
    assert report.graceful and pool.closed
    with pytest.raises(PoolClosed, match="closed"):
        await pool.acquire()

    async with create_pool(database_url, min_size=0, max_size=1) as pool2:
        assert pool2.stats().size == 0
        async with pool2.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        assert pool2.stats().created == 1


async def test_acquire_before_open_says_how_to_open(database_url: str) -> None:
    pool = create_pool(database_url)
    with pytest.raises(PoolClosed, match="await create_pool"):
        await pool.acquire()


async def test_max_size_never_exceeded_under_200_acquirers(database_url: str, pg_conn: asyncpg.Connection,
                                                           app: str) -> None:
    in_use = peak = 0
    server_peak = 0

    async with create_pool(database_url, min_size=1, max_size=7,
                           server_settings={"application_name": app}) as pool:
        async def borrow(i: int) -> None:
            nonlocal in_use, peak
            async with pool.acquire() as conn:
                in_use += 1
                peak = max(peak, in_use)
                await conn.fetchval("SELECT pg_sleep(0.002)")
                in_use -= 1

        async def watch_server() -> None:
            nonlocal server_peak
            while True:
                server_peak = max(server_peak, sum((await server_connections(pg_conn, app)).values()))
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_server())
        await asyncio.gather(*(borrow(i) for i in range(200)))
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        stats = pool.stats()
        assert peak == 7  # enough demand to fill the pool, never more
        assert stats.size == 7 and stats.created == 7 and stats.acquired == 200
        assert 1 <= server_peak <= 7
        assert stats.wait_count == 200 and stats.wait_p99 > stats.wait_p50 >= 0


async def test_acquire_timeout_is_a_clear_error(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, timeout=0.1) as pool:
        async with pool.acquire():
            with pytest.raises(PoolTimeout, match=r"timeout=0.1s \(max_size=1"):
                await pool.acquire()
            with pytest.raises(PoolTimeout):
                await pool.acquire(timeout=0.05)
        stats = pool.stats()
        assert stats.acquire_timeouts == 2 and stats.waiting == 0 and stats.in_use == 0
        async with pool.acquire(timeout=0.5) as conn:  # the pool still works
            assert await conn.fetchval("SELECT 1") == 1


async def test_max_waiting_rejects_at_once(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, max_waiting=2) as pool:
        held = await pool.acquire()
        waiters = [asyncio.create_task(pool.acquire(timeout=5).__aenter__()) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert pool.stats().waiting == 2
        with pytest.raises(PoolTooManyWaiters, match=r"2 callers already wait .*max_waiting=2"):
            await pool.acquire()
        assert pool.stats().rejected == 1
        await pool.release(held)
        first = await waiters[0]
        await pool.release(first)
        await pool.release(await waiters[1])
        assert pool.stats().in_use == 0


async def test_waiters_are_served_first_in_first_out(database_url: str) -> None:
    order: list[int] = []
    async with create_pool(database_url, min_size=1, max_size=1) as pool:
        held = await pool.acquire()

        async def wait(i: int) -> None:
            async with pool.acquire() as conn:
                order.append(i)
                await conn.fetchval("SELECT 1")

        tasks = []
        for i in range(6):
            tasks.append(asyncio.create_task(wait(i)))
            await asyncio.sleep(0.005)
        await pool.release(held)
        await asyncio.gather(*tasks)
    assert order == list(range(6))


async def test_a_slow_holder_blocks_nobody_else(database_url: str) -> None:
    """With two connections, one held for a long time, the other keeps serving everybody."""
    async with create_pool(database_url, min_size=2, max_size=2) as pool:
        slow_holding = asyncio.Event()

        async def slow() -> None:
            async with pool.acquire() as conn:
                slow_holding.set()
                await conn.fetchval("SELECT pg_sleep(2)")

        slow_task = asyncio.create_task(slow())
        await slow_holding.wait()
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def quick() -> None:
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")

        await asyncio.gather(*(quick() for _ in range(100)))
        elapsed = loop.time() - started
        assert not slow_task.done()
        assert elapsed < 1.0, f"100 quick queries took {elapsed:.2f}s behind a 2 s holder"
        slow_task.cancel()
        await asyncio.gather(slow_task, return_exceptions=True)
        assert pool.stats().in_use == 0

