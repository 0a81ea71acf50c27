"""Benchmark: perf.pool in each reset mode against asyncpg's pool, raced in one interleaved run.

    python -m perf.bench.pool            # profile from PERF_PROFILE (quick by default)
    python -m perf.bench.pool --rounds 9 --concurrency 1 10 50 --all

Prints queries/s (median over rounds, min-max spread) of ``perf.pool`` with
``reset="none"``, ``"session"`` (the default) and ``"always"``, and of asyncpg's pool
with its default reset and with a no-op reset, at each concurrency; then each mode's
throughput as a ratio of ``reset="none"`` (per-round ratios: median and spread). Target
(issue #15): the safe mode loses <= 15% against no reset at concurrency 10.
``--all`` adds connect-per-request and the seed's pool.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from perf.config import get_settings
from perf.measure import machine_info
from perf.pool.demo_race import (
    ASYNCPG,
    ASYNCPG_NO_RESET,
    CONNECT,
    OURS,
    OURS_ALWAYS,
    OURS_NONE,
    SEED,
    WHAT_IS_RESET,
    Contenders,
    RaceResult,
    race,
)
from perf.services import ensure_services

POOLS = (OURS_NONE, OURS, OURS_ALWAYS, ASYNCPG_NO_RESET, ASYNCPG)
MAX_LOSS = 0.15  # the safe mode's allowed throughput loss against no reset at c=10
TARGET_CONCURRENCY = 10


async def run(database_url: str, *, concurrencies: list[int], rounds: int, queries: int, max_size: int,
              names: tuple[str, ...] = POOLS) -> RaceResult:
    """Open each strategy in ``names`` against ``database_url`` and race them (see :func:`race`)."""
    per_strategy = {name: queries for name in names}
    if CONNECT in per_strategy:
        per_strategy[CONNECT] = max(queries // 20, 50)
    async with Contenders(database_url, max_size=max_size, names=names,
                          application_name="perf-bench-pool") as contenders:
        return await race(contenders, concurrencies=concurrencies, rounds=rounds, queries=per_strategy)


def ratio_spread(result: RaceResult, variant: str, baseline: str, concurrency: int) -> tuple[float, float, float]:
    """Per-round ratios of ``variant``'s queries/s to ``baseline``'s: (median, min, max)."""
    rows = result.frame[result.frame["concurrency"] == concurrency]
    wide = rows.pivot(index="round", columns="strategy", values="qps")
    ratios = wide[variant] / wide[baseline]
    return float(ratios.median()), float(ratios.min()), float(ratios.max())


def report(result: RaceResult, *, out: TextIO = sys.stdout) -> bool:
    """Print queries/s per strategy and concurrency, each pool against ``reset="none"``, and the target."""
    frame = result.frame
    names = [n for n in (*POOLS, SEED, CONNECT) if n in set(frame["strategy"])]
    print(f"{'strategy':<30}{'conc':>5}{'median q/s':>12}{'min-max q/s':>20}{'rounds':>8}", file=out)
    for conc in sorted(frame["concurrency"].unique()):
        for name in names:
            qps = frame[(frame["concurrency"] == conc) & (frame["strategy"] == name)]["qps"]
            spread = f"{qps.min():,.0f}-{qps.max():,.0f}"
            print(f"{name:<30}{conc:>5}{qps.median():>12,.0f}{spread:>20}{len(qps):>8}", file=out)
    print(f"\nthroughput / {OURS_NONE} (per-round ratio: median [min-max])", file=out)
    concs = sorted(frame["concurrency"].unique())
    print(f"{'strategy':<30}" + "".join(f"{'c=' + str(c):>22}" for c in concs), file=out)
    for name in names:
        if name == OURS_NONE:
            continue
        cells = []
        for conc in concs:
            med, lo, hi = ratio_spread(result, name, OURS_NONE, conc)
            cells.append(f"{med:.2f} [{lo:.2f}-{hi:.2f}]")
        print(f"{name:<30}" + "".join(f"{c:>22}" for c in cells), file=out)
    print("\nwhat each resets:", file=out)
    for name in names:
        print(f"  {name:<30}{WHAT_IS_RESET[name]}", file=out)
    met = True
    if TARGET_CONCURRENCY in concs:
        med, lo, hi = ratio_spread(result, OURS, OURS_NONE, TARGET_CONCURRENCY)
        met = med >= 1 - MAX_LOSS
        print(f"\n{OURS} vs {OURS_NONE} at c={TARGET_CONCURRENCY}: {med:.2f}x [{lo:.2f}-{hi:.2f}] "
              f"(target >= {1 - MAX_LOSS:.2f}x: {'MET' if met else 'NOT MET'})", file=out)
    return met


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 0 whether or not the target is met (it is a report)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.pool", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=settings.pick(5, 11))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--queries", type=int, default=settings.pick(800, 6000), help="queries per burst")
    parser.add_argument("--max-size", type=int, default=10, help="connections per pool")
    parser.add_argument("--all", action="store_true", help="also race connect-per-request and the seed's pool")
    args = parser.parse_args(argv)
    names = (*POOLS, SEED, CONNECT) if args.all else POOLS
    info = machine_info()
    with ensure_services(settings) as services:
        print(f"profile={settings.profile} rounds={args.rounds} queries/burst={args.queries} "
              f"max_size={args.max_size} cpus={info.get('cpus', '?')} python={info.get('python', '?')}")
        result = asyncio.run(run(services.database_url, concurrencies=args.concurrency, rounds=args.rounds,
                                 queries=args.queries, max_size=args.max_size, names=names))
    report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
