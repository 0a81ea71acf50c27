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
from typing import TextIO

from perf.config import get_settings
from perf.queue.demo_crash import CrashResult, crash_experiment
from perf.queue.demo_throughput import measure
from perf.services import ensure_services


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
