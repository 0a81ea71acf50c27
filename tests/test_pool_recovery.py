"""perf.pool recovers from a PostgreSQL restart (a private server: never restart the shared one)."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import pytest

from perf.pool import PoolConnectError, create_pool
from perf.pool.demo_timeline import run_timeline, sample_stats
from perf.services import EmbeddedPostgres


@pytest.mark.slow
async def test_pool_recovers_after_a_restart_and_respects_max_connections(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", max_connections=10) as server:
        # The server is down for 2 s, four times the 0.5 s acquire timeout: acquires that wait out
        # the restart fail in that window, whatever the machine's speed (a restart shorter than the
        # timeout costs waiting, not errors: the pool retries the connect until its timeout).
        async with create_pool(server.url, min_size=3, max_size=3, timeout=0.5) as pool:
            async def work() -> None:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")

            async def restart_later() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(server.restart, down_for=2.0)

            restarting = asyncio.create_task(restart_later())
            timeline = await run_timeline(work, concurrency=3, seconds=6.0, bucket=0.1)
            await restarting
            stats = pool.stats()
        assert timeline.frame["errors"].sum() > 0
        assert timeline.frame["ok"].iloc[:4].sum() > 0 and timeline.frame["ok"].iloc[-5:].sum() > 0
        recovered = timeline.recovered_after(0.5)
        assert recovered is not None and recovered < 5.0  # down 2 s, then the server's start and a reconnect
        assert stats.lost == 3 and stats.size == 3 and stats.created >= 6 and stats.in_use == 0
        assert len(timeline.frame) == 60

        # A pool larger than max_connections: connects beyond the limit fail, clearly.
        async with create_pool(server.url, min_size=0, max_size=20, timeout=2) as big:
            async def slow() -> None:
                async with big.acquire() as conn:
                    await conn.fetchval("SELECT pg_sleep(0.05)")

            results = await asyncio.gather(*(slow() for _ in range(20)), return_exceptions=True)
            failures = [r for r in results if r is not None]
            assert failures and all(isinstance(f, PoolConnectError) for f in failures)
            assert "too many clients" in str(failures[0])
            assert big.stats().size <= 10 and big.stats().connect_errors == len(failures)
            samples = await sample_stats(big, seconds=0.2, every=0.05)
            assert list(samples.columns) == ["t", "size", "idle", "in_use", "waiting"] and len(samples) >= 4


@pytest.mark.slow
async def test_a_spare_connection_that_fails_to_open_is_logged_and_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL down: refilling to min_size fails, is retried, never kills a task, and is logged
    once when the outage begins and once when it ends (not once per attempt)."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    caplog.set_level(logging.WARNING, logger="perf.pool.pool")
    try:
        with EmbeddedPostgres(tmp_path / "pg") as server:
            async with create_pool(server.url, min_size=2, max_size=4, timeout=2,
                                   maintenance_interval=0.05) as pool:
                await asyncio.to_thread(server.stop)
                for _ in range(200):  # the sweep finds both connections lost, then refills and fails
                    if pool.stats().connect_errors >= 4:
                        break
                    await asyncio.sleep(0.05)
                down = pool.stats()
                assert down.lost == 2 and down.connect_errors >= 4 and down.idle == 0
                await asyncio.to_thread(server.start)
                for _ in range(200):
                    if pool.stats().idle == 2:
                        break
                    await asyncio.sleep(0.05)
                async with pool.acquire() as conn:
                    assert await conn.fetchval("SELECT 1") == 1
                up = pool.stats()
                assert up.size == 2 and up.created >= 4
        gc.collect()  # a task that died with an exception reports it when collected
    finally:
        loop.set_exception_handler(previous)
    lines = [r.getMessage() for r in caplog.records if r.name == "perf.pool.pool"]
    assert len(lines) == 2 and all(r.levelno == logging.WARNING for r in caplog.records if r.name == "perf.pool.pool")
    assert lines[0].startswith("cannot open connections") and lines[1].startswith("connections open again"), lines
    assert unhandled == []
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)
