"""A PostgreSQL fast shutdown or restart, seen by perf.pool and by the one "database unavailable"
classification (perf.pool.unavailable). Private servers: never stop the shared one."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from perf.pool import create_pool
from perf.pool.unavailable import is_unavailable, told_to_close, watch_for_fatal
from perf.services import EmbeddedPostgres


async def _hammer_until_all_closed(conns: list[asyncpg.Connection], *, check: bool) -> Counter[str]:
    """Query the connections in turn (as a pool lends them) until every one is closed; count errors.

    ``check``: skip a connection :func:`told_to_close` says is closing, as the pool does.
    """
    errors: Counter[str] = Counter()
    i = 0
    while not all(c.is_closed() for c in conns):
        conn = conns[i % len(conns)]
        i += 1
        if told_to_close(conn) if check else conn.is_closed():
            await asyncio.sleep(0)
            continue
        try:
            await conn.fetchval("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - counted and classified below
            errors[type(exc).__name__] += 1
            assert is_unavailable(exc), repr(exc)
    return errors


async def test_a_connection_told_the_server_is_closing_it_counts_as_closed(database_url: str) -> None:
    """pg_terminate_backend sends the same FATAL as a fast shutdown does to each backend."""
    admin = await asyncpg.connect(database_url)
    seen: dict[bool, Counter[str]] = {False: Counter(), True: Counter()}
    try:
        for _ in range(10):
            for check in (False, True):
                conns = [await asyncpg.connect(database_url, server_settings={"application_name": "t_fatal"})
                         for _ in range(10)]
                for conn in conns:
                    watch_for_fatal(conn)
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = 't_fatal'")
                seen[check] += await _hammer_until_all_closed(conns, check=check)
            if seen[False]["InternalClientError"] >= 3:
                break
    finally:
        await admin.close()
    # Without the check, the window between the server's FATAL and its close is hit: asyncpg
    # refuses the query with InternalClientError (classified "unavailable", never a 500).
    assert seen[False]["InternalClientError"] >= 1, seen
    # With it, no connection the server is closing is used.
    assert seen[True]["InternalClientError"] == 0, seen


@pytest.mark.slow
async def test_the_pool_rides_a_fast_restart_and_logs_one_line_each_way(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="perf.pool.pool")
    with EmbeddedPostgres(tmp_path / "pg") as server:
        async with create_pool(server.url, min_size=4, max_size=4, timeout=20,
                               maintenance_interval=0.05) as pool:
            failures: list[BaseException] = []
            done = lent_doomed = 0
            stop = asyncio.Event()

            async def client() -> None:
                nonlocal done, lent_doomed
                while not stop.is_set():
                    try:
                        async with pool.acquire() as conn:
                            lent_doomed += told_to_close(conn)
                            await conn.fetchval("SELECT 1")
                        done += 1
                    except Exception as exc:  # noqa: BLE001 - collected
                        failures.append(exc)
                    await asyncio.sleep(0.005)

            clients = [asyncio.create_task(client()) for _ in range(2)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(server.restart, down_for=0.5)
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*clients)
            stats = pool.stats()
    # The idle connections are discarded as the server closes them, never lent out, and
    # acquires during the 0.5 s outage wait for it. A query sent while the server's FATAL was
    # already on its way fails "in the middle of operation" (it may have run: not retried),
    # classified unavailable; none fails on a connection the pool should have known was dead.
    assert lent_doomed == 0
    assert [f for f in failures if not isinstance(f, asyncpg.ConnectionDoesNotExistError)] == [], failures
    assert all(is_unavailable(f) for f in failures)
    assert done > 50 and stats.lost >= 1 and stats.created >= 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    began = [w for w in warnings if w.startswith("cannot open connections")]
    ended = [w for w in warnings if w.startswith("connections open again")]
    assert len(began) == 1 and len(ended) == 1, warnings
