"""Notebook 06's side-by-side table: the in-process queue vs the durable one.

:func:`compare_queues` runs :func:`perf.queue.demo_throughput.measure` (enqueue latency, throughput,
interleaved rounds) and :func:`perf.queue.demo_crash.crash_experiment` (SIGKILL a worker,
count what completes) and returns one row per queue. Call it from a running event loop
(a notebook cell): the crash experiments run in a thread, they start their own loops.

>>> table = await compare_queues(database_url, rounds=2, latency_tasks=100, throughput_tasks=400, crash_tasks=30)
"""

from __future__ import annotations

import asyncio
import statistics

import pandas as pd

from perf.queue.demo_crash import crash_experiment
from perf.queue.demo_throughput import measure

_LABELS = {"memory": "in-process (perf.queue.TaskQueue)", "durable": "durable (DurableQueue, exact depth)",
           "durable~": "durable (DurableQueue, approximate depth)"}


async def compare_queues(database_url: str, *, rounds: int = 2, latency_tasks: int = 100,
                         throughput_tasks: int = 400, submitters: int = 8, crash_tasks: int = 30,
                         crash_delay: float = 0.05) -> pd.DataFrame:
    """One row per queue: enqueue ``p50_ms``/``p99_ms`` and ``tasks_per_s`` (median over ``rounds``,
    with ``*_min``/``*_max``), then ``accepted``/``completed``/``lost`` after a SIGKILL of the worker
    (``crash_tasks`` acknowledged tasks of ``crash_delay`` s each; not run for ``durable~``).

    The durable throughput rounds use ``throughput_tasks // 4`` tasks (as the benchmark does).
    """
    if rounds < 1 or latency_tasks < 1 or throughput_tasks < 4 or crash_tasks < 1:
        raise ValueError(f"rounds={rounds}, latency_tasks={latency_tasks}, crash_tasks={crash_tasks} must be >= 1 "
                         f"and throughput_tasks={throughput_tasks} >= 4")
    results = await measure(database_url, rounds=rounds, latency_tasks=latency_tasks,
                            throughput_tasks=throughput_tasks, submitters=submitters)
    rows: dict[str, dict[str, float | str]] = {}
    for name, per_round in results.items():
        row: dict[str, float | str] = {"queue": _LABELS[name]}
        for key in ("p50_ms", "p99_ms", "tasks_per_s"):
            values = [r[key] for r in per_round]
            row[key], row[f"{key}_min"], row[f"{key}_max"] = statistics.median(values), min(values), max(values)
        rows[name] = row
    for kind in ("memory", "durable"):
        crash = await asyncio.to_thread(crash_experiment, kind, database_url, tasks=crash_tasks, delay=crash_delay)
        rows[kind].update(accepted=crash.accepted, completed=crash.completed, lost=crash.lost,
                          recovery_s=crash.recovery_seconds)
    return pd.DataFrame.from_dict(rows, orient="index")
