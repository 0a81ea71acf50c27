"""Benchmark: the in-process TaskQueue vs the durable (PostgreSQL) queue, side by side.

    python -m perf.bench.queue            # profile from PERF_PROFILE (quick by default, < 1 min)
    python -m perf.bench.queue --rounds 5 --latency-tasks 1000 --throughput-tasks 2000

Three measurements, each for both queues in one run:

* enqueue latency: one submit at a time (what a ``POST /uploads`` waits before its 202),
  for the durable queue with an exact cross-process depth limit and without (``durable~``);
* sustained throughput: ``--submitters`` concurrent submitters, a no-op handler, tasks
  completed per second from the first submit to the last ``done``;
* the crash experiment (:mod:`perf.queue.demo_crash`): a worker acknowledges
  ``--crash-tasks`` tasks one by one and is SIGKILLed; how many ever complete.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import asyncpg

from perf.config import get_settings
from perf.queue.demo_crash import CrashResult, crash_experiment
from perf.queue.durable import DurableQueue
from perf.queue.queue import TaskQueue
from perf.services import ensure_services

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


def report(results: dict[str, list[dict[str, float]]], crashes: list[CrashResult], *, out: TextIO = sys.stdout) -> None:
    """Print medians (min-max over rounds) per queue, then the crash experiment."""
    print(f"{'queue':<10}{'enqueue p50 ms':>24}{'enqueue p99 ms':>24}{'throughput tasks/s':>26}", file=out)
    for name, rounds in results.items():
        cells = []
        for key, fmt in (("p50_ms", ".3f"), ("p99_ms", ".3f"), ("tasks_per_s", ",.0f")):
            values = [r[key] for r in rounds]
            cells.append(f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})")
        print(f"{name:<10}{cells[0]:>24}{cells[1]:>24}{cells[2]:>26}", file=out)
    print("(median, min-max over rounds; durable~: exact_depth=False, the depth limit may overshoot a little)",
          file=out)
    print("\ncrash experiment: SIGKILL of the worker right after its last acknowledgement", file=out)
    print(f"{'queue':<10}{'accepted':>10}{'done before kill':>18}{'completed':>11}{'lost':>6}{'recovery s':>12}",
          file=out)
    for crash in crashes:
        print(f"{crash.queue:<10}{crash.accepted:>10}{crash.completed_before_kill:>18}{crash.completed:>11}"
              f"{crash.lost:>6}{crash.recovery_seconds:>12.2f}", file=out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run both queues, print the table (exit status 0: it is a report)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.queue", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(str(settings.pick(3, 5))))
    parser.add_argument("--latency-tasks", type=int, default=int(str(settings.pick(300, 2000))))
    parser.add_argument("--throughput-tasks", type=int, default=int(str(settings.pick(2000, 20000))),
                        help="tasks per throughput round for the in-process queue (a quarter for the durable one)")
    parser.add_argument("--submitters", type=int, default=8, help="concurrent submitters in the throughput rounds")
    parser.add_argument("--crash-tasks", type=int, default=int(str(settings.pick(100, 500))))
    args = parser.parse_args(argv)
    with ensure_services(settings) as services:
        results = asyncio.run(measure(services.database_url, rounds=args.rounds, latency_tasks=args.latency_tasks,
                                      throughput_tasks=args.throughput_tasks, submitters=args.submitters))
        crashes = [crash_experiment(kind, services.database_url, tasks=args.crash_tasks)
                   for kind in ("memory", "durable")]
    report(results, crashes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
