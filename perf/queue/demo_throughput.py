"""Measuring apparatus: enqueue latency and sustained throughput of the in-process queue and the
durable one, in interleaved rounds (:func:`measure`).

* enqueue latency: one submit at a time (what a ``POST /uploads`` waits before its 202),
  for the durable queue with an exact cross-process depth limit and without (``durable~``);
* sustained throughput: ``submitters`` concurrent submitters, a no-op handler, tasks
  completed per second from the first submit to the last ``done``.

``python -m perf.bench.queue`` prints it; notebook 06 shows it (:mod:`perf.queue.demo_compare`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from perf.queue.durable import DurableQueue
from perf.queue.queue import TaskQueue

SCHEMA = "bench_queue"


async def _noop(payload: bytes) -> int:
    return len(payload)


async def _fresh_schema(database_url: str, *, create: bool = True) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        if create:
            await conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    finally:
        await conn.close()


async def _latencies(submit: Callable[[bytes], Awaitable[Any]], tasks: int) -> list[float]:
    samples = []
    for i in range(tasks):
        started = time.perf_counter()
        await submit(b"%d" % i)
        samples.append(time.perf_counter() - started)
    return samples


async def _memory_round(latency_tasks: int, throughput_tasks: int, submitters: int) -> dict[str, float]:
    async with TaskQueue(workers=4, max_size=max(latency_tasks, throughput_tasks) + 1) as queue:
        async def submit(payload: bytes) -> str:
            return queue.submit(_noop, payload)

        samples = await _latencies(submit, latency_tasks)
        await queue.stop()
    async with TaskQueue(workers=4, max_size=throughput_tasks + 1) as queue:
        started = time.perf_counter()
        ids = await _submit_concurrently(submit_fn=lambda p: submit_sync(queue, p), tasks=throughput_tasks,
                                         submitters=submitters)
        for task_id in ids:
            await queue.wait(task_id, timeout=60, interval=0.001)
        seconds = time.perf_counter() - started
    return _summary(samples, throughput_tasks / seconds)


async def submit_sync(queue: TaskQueue, payload: bytes) -> str:
    """``queue.submit`` as a coroutine (the in-process queue never waits)."""
    return queue.submit(_noop, payload)


async def _submit_concurrently(*, submit_fn: Callable[[bytes], Awaitable[str]], tasks: int,
                               submitters: int) -> list[str]:
    ids: list[str] = []

    async def submitter(offset: int) -> None:
        for i in range(offset, tasks, submitters):
            ids.append(await submit_fn(b"%d" % i))

    await asyncio.gather(*(submitter(k) for k in range(submitters)))
    return ids


async def _durable_round(database_url: str, latency_tasks: int, throughput_tasks: int, submitters: int, *,
                         exact_depth: bool) -> dict[str, float]:
    await _fresh_schema(database_url)
    async with DurableQueue(database_url, schema=SCHEMA, workers=0, max_depth=1_000_000,
                            exact_depth=exact_depth) as intake:
        samples = await _latencies(lambda p: intake.submit("noop", p), latency_tasks)
    await _fresh_schema(database_url)
    async with DurableQueue(database_url, schema=SCHEMA, handlers={"noop": _noop}, workers=8,
                            max_depth=1_000_000, exact_depth=exact_depth) as queue:
        started = time.perf_counter()
        await _submit_concurrently(submit_fn=lambda p: queue.submit("noop", p), tasks=throughput_tasks,
                                   submitters=submitters)
        while (await queue.stats())["states"]["done"] < throughput_tasks:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
    return _summary(samples, throughput_tasks / seconds)


def _summary(samples: list[float], throughput: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": ordered[len(ordered) // 2] * 1e3, "p99_ms": ordered[int(len(ordered) * 0.99)] * 1e3,
            "tasks_per_s": throughput}


async def measure(database_url: str, *, rounds: int, latency_tasks: int, throughput_tasks: int,
                  submitters: int) -> dict[str, list[dict[str, float]]]:
    """Interleaved rounds: ``{"memory": [round, ...], "durable": [...], "durable~": [...]}``.

    ``durable~`` is the durable queue with ``exact_depth=False`` (enqueues commit in parallel).
    """
    results: dict[str, list[dict[str, float]]] = {"memory": [], "durable": [], "durable~": []}
    try:
        for _ in range(rounds):
            results["memory"].append(await _memory_round(latency_tasks, throughput_tasks, submitters))
            for name, exact in (("durable", True), ("durable~", False)):
                results[name].append(await _durable_round(database_url, latency_tasks, throughput_tasks // 4,
                                                          submitters, exact_depth=exact))
    finally:
        await _fresh_schema(database_url, create=False)
    return results
