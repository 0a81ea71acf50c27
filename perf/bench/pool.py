"""Benchmark: queries/s per connection strategy and concurrency, raced in one interleaved run.

    python -m perf.bench.pool            # profile from PERF_PROFILE (quick by default)
    python -m perf.bench.pool --rounds 9 --concurrency 1 10 50 100

Targets (from issue #5), at concurrency 10: perf.pool >= 20x connect-per-request and
>= 1.3x asyncpg's default pool (its reset on release costs a round trip; ours rolls
back only when a transaction is open).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from perf.config import get_settings
from perf.measure import machine_info
from perf.pool.demo_race import ASYNCPG, CONNECT, OURS, STRATEGIES, Contenders, RaceResult, race
from perf.services import ensure_services

TARGETS = ((CONNECT, 20.0), (ASYNCPG, 1.3))
TARGET_CONCURRENCY = 10


async def run(database_url: str, *, concurrencies: list[int], rounds: int, queries: int,
              max_size: int) -> RaceResult:
    """Open every strategy against ``database_url`` and race them (see :func:`perf.pool.demo_race.race`)."""
    per_strategy = {name: queries for name in STRATEGIES}
    per_strategy[CONNECT] = max(queries // 20, 50)
    async with Contenders(database_url, max_size=max_size, application_name="perf-bench-pool") as contenders:
        return await race(contenders, concurrencies=concurrencies, rounds=rounds, queries=per_strategy)


def report(result: RaceResult, *, out=sys.stdout) -> bool:
    """Print queries/s per strategy and concurrency, the target ratios, and whether each was met."""
    summary = result.summary()
    print(f"{'strategy':<28}{'conc':>5}{'median q/s':>12}{'IQR q/s':>20}{'rounds':>8}", file=out)
    for row in summary.sort_values(["concurrency", "median_qps"], ascending=[True, False]).itertuples():
        spread = f"{row.q1_qps:,.0f}-{row.q3_qps:,.0f}"
        print(f"{row.strategy:<28}{row.concurrency:>5}{row.median_qps:>12,.0f}{spread:>20}{row.rounds:>8}", file=out)
    print(file=out)
    all_met = True
    for baseline, target in TARGETS:
        ratio = result.ratio(OURS, baseline, TARGET_CONCURRENCY)
        met = ratio >= target
        all_met &= met
        print(f"{OURS} vs {baseline} at c={TARGET_CONCURRENCY}: {ratio:.2f}x "
              f"(target >= {target:g}x: {'MET' if met else 'NOT MET'})", file=out)
    for conc in sorted(result.frame["concurrency"].unique()):
        if conc != TARGET_CONCURRENCY:
            parts = [f"vs {b}: {result.ratio(OURS, b, conc):.2f}x" for b, _ in TARGETS]
            print(f"  (c={conc}: {OURS} " + ", ".join(parts) + ")", file=out)
    return all_met


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 0 whether or not targets are met (it is a report)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.pool", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=settings.pick(5, 11))
    parser.add_argument("--concurrency", type=int, nargs="+", default=settings.pick([1, 10, 50], [1, 10, 50, 100]))
    parser.add_argument("--queries", type=int, default=settings.pick(1500, 6000), help="queries per burst")
    parser.add_argument("--max-size", type=int, default=10, help="connections per pool")
    args = parser.parse_args(argv)
    info = machine_info()
    with ensure_services(settings) as services:
        print(f"profile={settings.profile} rounds={args.rounds} queries/burst={args.queries} "
              f"max_size={args.max_size} cpus={info.get('cpus', '?')} python={info.get('python', '?')}")
        result = asyncio.run(run(services.database_url, concurrencies=args.concurrency, rounds=args.rounds,
                                 queries=args.queries, max_size=args.max_size))
    report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
