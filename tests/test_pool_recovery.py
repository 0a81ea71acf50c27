"""perf.pool recovers from a PostgreSQL restart (a private server: never restart the shared one)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from perf.pool import PoolConnectError, create_pool
from perf.pool.demo_timeline import run_timeline, sample_stats
from perf.services import EmbeddedPostgres


@pytest.mark.slow
async def test_pool_recovers_after_a_restart_and_respects_max_connections(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg", max_connections=10) as server:
        async with create_pool(server.url, min_size=3, max_size=3, timeout=1) as pool:
            async def work() -> None:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")

            async def restart_later() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(server.restart, down_for=0.5)

            restarting = asyncio.create_task(restart_later())
            timeline = await run_timeline(work, concurrency=3, seconds=3.0, bucket=0.1)
            await restarting
            stats = pool.stats()
        assert timeline.frame["errors"].sum() > 0
        assert timeline.frame["ok"].iloc[:4].sum() > 0 and timeline.frame["ok"].iloc[-5:].sum() > 0
        recovered = timeline.recovered_after(0.5)
        assert recovered is not None and recovered < 2.5
        assert stats.lost == 3 and stats.size == 3 and stats.created >= 6 and stats.in_use == 0
        assert len(timeline.frame) == 30

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
