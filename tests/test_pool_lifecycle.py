"""perf.pool: idle timeout, max lifetime, health checks, and close with borrowed connections."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import pytest
import redis.asyncio as redis

from perf.pool import ConnectionAdapter, PoolClosed, PoolConnectError, create_pool
from perf.pool.asyncpg_adapter import server_connections
from perf.pool.slots import Holder


async def test_idle_connections_are_closed_down_to_min_size(database_url: str, pg_conn: asyncpg.Connection) -> None:
    app = f"pooltest-{uuid.uuid4().hex[:10]}"
    async with create_pool(database_url, min_size=1, max_size=5, idle_timeout=0.2, jitter=0,
                           maintenance_interval=0.05, server_settings={"application_name": app}) as pool:
        held = [await pool.acquire() for _ in range(5)]
        for conn in held:
            await pool.release(conn)
        assert pool.stats().size == 5
        await asyncio.sleep(0.6)
        stats = pool.stats()
        assert (stats.size, stats.idle, stats.expired_idle) == (1, 1, 4)
        for _ in range(50):
            if await server_connections(pg_conn, app) == {"idle": 1}:
                break
            await asyncio.sleep(0.02)
        assert await server_connections(pg_conn, app) == {"idle": 1}


async def test_max_lifetime_replaces_old_connections(database_url: str) -> None:
    async with create_pool(database_url, min_size=1, max_size=1, max_lifetime=0.2,
                           maintenance_interval=0.05) as pool:
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
        await asyncio.sleep(0.5)
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != first
        assert pool.stats().expired_lifetime >= 1


async def test_limits_are_enforced_at_acquire_time_too(database_url: str) -> None:
    """No background sweep for an hour: acquire itself refuses an expired connection."""
    async with create_pool(database_url, min_size=1, max_size=1, max_lifetime=0.1,
                           maintenance_interval=3600) as pool:
        async with pool.acquire() as conn:
            first = conn.get_server_pid()
        await asyncio.sleep(0.2)
        async with pool.acquire() as conn:
            assert conn.get_server_pid() != first
        assert pool.stats().expired_lifetime == 1


def test_jitter_spreads_expiry() -> None:
    holders = [Holder(object(), 0.0, 100.0, 10.0, 0.5) for _ in range(200)]
    lifetimes = [h.expires_at for h in holders]
    idle_limits = [h.idle_limit for h in holders]
    assert all(50.0 <= x <= 100.0 for x in lifetimes) and max(lifetimes) - min(lifetimes) > 30
    assert all(5.0 <= x <= 10.0 for x in idle_limits) and len(set(idle_limits)) > 150
    assert Holder(object(), 0.0, 100.0, 10.0, 0.0).expires_at == 100.0


async def test_close_waits_then_terminates_and_names_the_holders(database_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pool = await create_pool(database_url, min_size=2, max_size=3)
    returns_in_time = await pool.acquire()
    never_returned = await pool.acquire()
    pid = never_returned.get_server_pid()
    extra = await pool.acquire()  # the third slot, returned: closed at once
    await pool.release(extra)

    async def give_back_soon() -> None:
        await asyncio.sleep(0.05)
        await pool.release(returns_in_time)

    giver = asyncio.create_task(give_back_soon())
    with caplog.at_level(logging.WARNING, logger="perf.pool.pool"):
        report = await pool.close(timeout=0.3)
    await giver
    assert not report.graceful
    assert len(report.still_held) == 1 and f"pid={pid}" in report.still_held[0]
    assert "held by" in report.still_held[0]
    assert report.waited_seconds >= 0.3
    assert f"pid={pid}" in caplog.text
    assert never_returned.is_closed() and returns_in_time.is_closed()
    await pool.release(never_returned)  # late release after close: a no-op, not an error
    stats = pool.stats()
    assert (stats.size, stats.in_use, stats.idle) == (0, 0, 0)
    assert stats.created == stats.closed == 3
    with pytest.raises(PoolClosed):
        await pool.acquire()
    assert await pool.close() is report  # idempotent


async def test_waiters_fail_with_pool_closed(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire().__aenter__())
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(pool.close(timeout=2))
    with pytest.raises(PoolClosed, match="closed while this acquire waited"):
        await waiter
    await pool.release(held)
    report = await closing
    assert report.graceful and report.still_held == ()
    assert held.is_closed()


class RedisAdapter(ConnectionAdapter[redis.Redis]):
    """Pools single-connection Redis clients: the pool is generic, not tied to asyncpg."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def connect(self) -> redis.Redis:
        client = redis.from_url(self.url, single_connection_client=True)
        await client.client_setname("pooltest")
        return client

    async def close(self, conn: redis.Redis) -> None:
        await conn.aclose()

    async def check(self, conn: redis.Redis) -> None:
        await conn.ping()

    async def client_id(self, conn: redis.Redis) -> int:
        return int(await conn.client_id())


async def test_health_check_replaces_a_dead_redis_connection(redis_url: str, redis_client: redis.Redis) -> None:
    adapter = RedisAdapter(redis_url)
    async with create_pool(adapter=adapter, min_size=1, max_size=1, health_check=True) as pool:
        async with pool.acquire() as conn:
            first = await adapter.client_id(conn)
        assert await redis_client.client_kill_filter(_id=first) == 1
        async with pool.acquire() as conn:  # the check fails, the pool opens a new client
            assert await adapter.client_id(conn) != first
        stats = pool.stats()
        assert (stats.lost, stats.created, stats.size) == (1, 2, 1)


async def test_connect_failure_is_wrapped_and_frees_the_slot() -> None:
    async with create_pool("postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, timeout=5) as pool:
        for _ in range(2):
            with pytest.raises(PoolConnectError, match="could not open a connection") as info:
                await pool.acquire()
            assert isinstance(info.value.__cause__, OSError)
        assert (pool.stats().size, pool.stats().connect_errors) == (0, 2)


async def test_concurrent_closes_share_one_report(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    held = await pool.acquire()
    first = asyncio.create_task(pool.close(timeout=0.2))
    second = asyncio.create_task(pool.close(timeout=30))
    reports = await asyncio.gather(first, second)
    assert reports[0] is reports[1] and reports[0].still_held and held.is_closed()
    assert pool.stats().size == 0


async def test_close_during_a_slow_release_counts_each_connection_once(database_url: str) -> None:
    async def slow_reset(conn: asyncpg.Connection) -> None:
        await conn.fetchval("SELECT pg_sleep(1)")

    pool = await create_pool(database_url, min_size=2, max_size=2, reset=slow_reset, reset_timeout=5)
    conn = await pool.acquire()
    releasing = asyncio.create_task(pool.release(conn))
    await asyncio.sleep(0.05)
    report = await pool.close(timeout=0.1)  # the release is still resetting: terminated
    await asyncio.gather(releasing, return_exceptions=True)
    assert len(report.still_held) == 1
    stats = pool.stats()
    assert (stats.size, stats.in_use, stats.idle) == (0, 0, 0)
    assert stats.closed == stats.created == 2


async def test_sweep_replaces_lost_connections_up_to_min_size(database_url: str,
                                                              pg_conn: asyncpg.Connection) -> None:
    async with create_pool(database_url, min_size=2, max_size=4, maintenance_interval=3600) as pool:
        held = [await pool.acquire() for _ in range(2)]
        pids = [conn.get_server_pid() for conn in held]
        for conn in held:
            await pool.release(conn)
        for pid in pids:
            await pg_conn.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(100):
            if all(conn.is_closed() for conn in held):
                break
            await asyncio.sleep(0.01)
        pool.sweep()
        await asyncio.sleep(0.3)  # the replacements open in the background
        stats = pool.stats()
        assert (stats.lost, stats.size, stats.idle, stats.created) == (2, 2, 2, 4)


async def test_open_fails_clearly_when_the_server_is_unreachable() -> None:
    pool = create_pool("postgresql://nobody@127.0.0.1:1/none", min_size=1, max_size=2)
    with pytest.raises(PoolConnectError, match="could not open a connection"):
        await pool
    assert pool.closed and pool.stats().size == 0


class FlakyCheckAdapter(RedisAdapter):
    async def check(self, conn: redis.Redis) -> None:
        raise ConnectionError("the check always fails")


async def test_health_check_failing_on_new_connections_gives_up(redis_url: str) -> None:
    async with create_pool(adapter=FlakyCheckAdapter(redis_url), min_size=0, max_size=1,
                           health_check=True, timeout=None) as pool:
        with pytest.raises(PoolConnectError, match="failed its health check"):
            await pool.acquire()
        stats = pool.stats()
        assert (stats.size, stats.in_use, stats.lost, stats.created) == (0, 0, 1, 1)


class SwallowingCloseAdapter(RedisAdapter):
    """A driver whose close ignores cancellation until released (what hung a pool close 180 s in CI)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.released = asyncio.Event()
        self.swallowed = 0

    async def close(self, conn: redis.Redis) -> None:
        while not self.released.is_set():
            try:
                await self.released.wait()
            except asyncio.CancelledError:
                self.swallowed += 1
        await super().close(conn)


async def test_close_returns_when_a_drivers_close_swallows_cancellation(redis_url: str) -> None:
    adapter = SwallowingCloseAdapter(redis_url)
    pool = await create_pool(adapter=adapter, min_size=1, max_size=1, reset_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        report = await asyncio.wait_for(pool.close(timeout=0.1), 30)  # before the fix: never returned
        # bounded by the reset timeout (0.2 s) and one second of grace for the cancelled: never "forever"
        assert loop.time() - started < 5 and pool.closed and report.graceful
        assert adapter.swallowed >= 1
    finally:
        adapter.released.set()  # let the stuck close finish before the loop ends (its teardown waits for it)
        await asyncio.sleep(0.05)
