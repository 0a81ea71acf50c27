"""perf.cache.singleflight: in-process coalescing (errors, cancellation)."""

from __future__ import annotations

import asyncio

import pytest

from perf.cache.singleflight import SingleFlight


async def test_concurrent_calls_share_one_run() -> None:
    flight = SingleFlight()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.02)
        return 42

    results = await asyncio.gather(*(flight.do("k", work) for _ in range(10)))
    assert runs == 1 and [v for v, _ in results] == [42] * 10
    assert sum(shared for _, shared in results) == 9 and len(flight) == 0


async def test_cancelled_leader_hands_over_to_a_waiter() -> None:
    flight = SingleFlight()
    started = asyncio.Event()
    runs = 0

    async def work() -> str:
        nonlocal runs
        runs += 1
        started.set()
        await asyncio.sleep(0.05)
        return "done"

    leader = asyncio.create_task(flight.do("k", work))
    await started.wait()
    waiter = asyncio.create_task(flight.do("k", work))
    await asyncio.sleep(0.01)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert await waiter == ("done", False)  # not cancelled: it became the new leader
    assert runs == 2
