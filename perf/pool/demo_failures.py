"""Scripted scenarios that expose a pool's failure modes; the notebook runs them on both pools.

Each works with anything that has ``await pool.acquire()`` and ``await pool.release(conn)``
(the seed's pool and :class:`~perf.pool.pool.Pool` alike) and asyncpg connections.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from perf.measure.latency import LatencyHistogram


async def _acquire(pool: Any) -> Any:
    return await pool.acquire()  # a coroutine, whatever acquire() returns (our pool: an awaitable)


async def drive(pool: Any, *, attempts: int, timeout: float = 0.2) -> list[str]:
    """Borrow, query and return a connection ``attempts`` times, one after another.

    Returns one outcome per attempt: ``"ok"``, the exception's class name (e.g.
    ``"TypeError"``), or ``"hung"`` when acquire did not return within ``timeout`` s.
    """
    outcomes = []
    for _ in range(attempts):
        try:
            conn = await asyncio.wait_for(_acquire(pool), timeout)
        except TimeoutError:
            outcomes.append("hung")
            continue
        except Exception as exc:  # the point is to report what the pool raised
            outcomes.append(type(exc).__name__)
            continue
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await pool.release(conn)
        outcomes.append("ok")
    return outcomes


@dataclass(frozen=True)
class SlowConnectResult:
    """Acquire waits of quick callers that arrived while another caller was opening a connection."""

    waits: LatencyHistogram
    slow_connect_seconds: float


async def waits_behind_slow_connect(pool: Any, *, callers: int = 20, head_start: float = 0.05) -> SlowConnectResult:
    """Time quick callers that arrive while one caller opens a (slow) new connection.

    Expects a pool with one idle connection, room for exactly one more, and a slow
    connect (e.g. an ``init`` that sleeps). One caller takes the idle connection; a
    second must open a new one; after ``head_start`` s the first returns its connection
    and ``callers`` quick callers arrive. A pool that holds a lock while connecting makes
    them all wait for that connect; a correct one lets them share the idle connection.
    """
    if callers < 1:
        raise ValueError(f"callers must be >= 1, got {callers!r}")
    loop = asyncio.get_running_loop()
    first = await pool.acquire()
    started = loop.time()
    opener = asyncio.create_task(_acquire(pool))
    await asyncio.sleep(head_start)
    await pool.release(first)
    waits = LatencyHistogram()

    async def quick() -> None:
        t0 = loop.time()
        conn = await pool.acquire()
        waits.record(loop.time() - t0)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await pool.release(conn)

    await asyncio.gather(*(quick() for _ in range(callers)))
    slow = await opener
    slow_seconds = loop.time() - started
    await pool.release(slow)
    return SlowConnectResult(waits=waits, slow_connect_seconds=slow_seconds)


async def next_borrower_after_cancel(pool: Any, *, query_seconds: float = 5.0) -> str:
    """Cancel a borrower in the middle of a transaction, then describe what the next borrower gets.

    Meant for a pool of size 1, so the next borrower receives the very same connection.
    """
    in_query = asyncio.Event()

    async def borrower() -> None:
        conn = await pool.acquire()
        try:
            await conn.execute("BEGIN")
            in_query.set()
            await conn.fetchval("SELECT pg_sleep($1)", query_seconds)
        finally:
            await pool.release(conn)

    task = asyncio.create_task(borrower())
    await in_query.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    conn = await asyncio.wait_for(_acquire(pool), 5)
    try:
        in_transaction = conn.is_in_transaction()
        try:
            answer: object = await conn.fetchval("SELECT 1")
        except (asyncpg.InterfaceError, asyncpg.PostgresError) as exc:
            answer = f"{type(exc).__name__}: {exc}"
        return f"in a transaction: {in_transaction}; SELECT 1 -> {answer}"
    finally:
        await pool.release(conn)
