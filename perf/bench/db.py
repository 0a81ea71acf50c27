"""Benchmark: insert strategies (rows/s) and OFFSET vs keyset paging growth, in one run.

    python -m perf.bench.db                 # profile from PERF_PROFILE (quick by default)
    python -m perf.bench.db --rows 5000 --rounds 5

Targets (from issue #4): COPY >= 50x and executemany >= 10x the rows/s of one INSERT per
row (autocommit), all strategies raced on the same rows, interleaved; paging growth
(last page time / first page time) >= 3 for OFFSET on the whole table and <= 1.5 for
keyset. Data lives in the schema ``bench_db`` (seeded once per size, then reused).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import asyncpg

from perf.config import get_settings
from perf.db.demo_race import page_growth, product_rows, race_inserts
from perf.db.ident import quote_ident
from perf.db.queries import get_products, get_products_n_plus_one
from perf.db.schema import ensure_seeded
from perf.measure import Comparison, compare_async, machine_info
from perf.services import ensure_services

SCHEMA = "bench_db"
INSERT_TARGETS = (("copy", 50.0), ("executemany", 10.0))
OFFSET_GROWTH_MIN = 3.0
KEYSET_GROWTH_MAX = 1.5


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def report_inserts(comparison: Comparison, rows: int, *, out: TextIO = sys.stdout) -> bool:
    """Print rows/s (median, IQR) and speedup vs row-by-row per strategy; return whether targets were met."""
    summary = comparison.summary()
    print(f"{'strategy':<22}{'median rows/s':>15}{'IQR rows/s':>24}{'vs row_by_row':>15}", file=out)
    for name, row in summary.iterrows():
        spread = f"{rows / row['q3']:,.0f}-{rows / row['q1']:,.0f}"
        print(f"{name:<22}{rows / row['median']:>15,.0f}{spread:>24}{row['speedup_vs_baseline']:>14.1f}x", file=out)
    all_met = True
    for name, target in INSERT_TARGETS:
        speedup = 1.0 / comparison.ratio(name, "row_by_row")
        met = speedup >= target
        all_met &= met
        print(f"{name} vs row_by_row: {speedup:.1f}x (target >= {target:g}x: {_verdict(met)})", file=out)
    return all_met


def report_paging(comparison: Comparison, growth: dict[str, float], total: int, limit: int,
                  *, out: TextIO = sys.stdout) -> bool:
    """Print first/last page medians and the growth ratios against their targets."""
    summary = comparison.summary().loc[["offset_first", "offset_last", "keyset_first", "keyset_last"]]
    print(f"\npaging {total:,} products, {limit} per page (median ms, IQR):", file=out)
    for name, row in summary.iterrows():
        print(f"  {name:<14}{row['median'] * 1e3:>9.3f} ms  ({row['q1'] * 1e3:.3f}-{row['q3'] * 1e3:.3f})", file=out)
    offset_met = growth["offset"] >= OFFSET_GROWTH_MIN
    keyset_met = growth["keyset"] <= KEYSET_GROWTH_MAX
    print(f"OFFSET growth last/first page: {growth['offset']:.1f}x "
          f"(target >= {OFFSET_GROWTH_MIN:g}: {_verdict(offset_met)})", file=out)
    print(f"keyset growth last/first page: {growth['keyset']:.2f}x "
          f"(target <= {KEYSET_GROWTH_MAX:g}: {_verdict(keyset_met)})", file=out)
    return offset_met and keyset_met


async def run(database_url: str, *, products: int, rows: int, rounds: int, limit: int,
              schema: str = SCHEMA, out: TextIO = sys.stdout) -> bool:
    """Seed ``schema`` if needed, race the inserts, measure paging and N+1; print everything.

    Returns True when every target was met.
    """
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        if await ensure_seeded(conn, products=products, seed=0):
            print(f"seeded {products:,} products into {schema}", file=out)
        records = product_rows(rows, seed=1)
        comparison = await race_inserts(conn, records, repeat=rounds, warmup=1, batch_size=1000)
        print(f"\ninserting {rows:,} product rows, {rounds} interleaved rounds:", file=out)
        inserts_met = report_inserts(comparison, rows, out=out)
        paging, growth = await page_growth(conn, limit=limit, repeat=max(rounds * 3, 9))
        paging_met = report_paging(paging, growth, products, limit, out=out)
        ids = list(range(1, 51))
        n1 = await compare_async({"n_plus_one": lambda: get_products_n_plus_one(conn, ids),
                                  "join": lambda: get_products(conn, ids)}, warmup=1, repeat=max(rounds * 3, 9))
        print(f"\n50 products with category and images: N+1 (101 queries) "
              f"{n1.summary().loc['n_plus_one', 'median'] * 1e3:.2f} ms vs one JOIN "
              f"{n1.summary().loc['join', 'median'] * 1e3:.2f} ms: JOIN {1 / n1.ratio('join'):.1f}x faster", file=out)
        return inserts_met and paging_met
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 0 whether or not targets are met (it is a report)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.db", description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=settings.pick(100_000, 1_000_000), help="table size")
    parser.add_argument("--rows", type=int, default=settings.pick(2000, 10_000), help="rows per insert run")
    parser.add_argument("--rounds", type=int, default=settings.pick(3, 7), help="interleaved rounds")
    parser.add_argument("--limit", type=int, default=100, help="page size for the paging test")
    args = parser.parse_args(argv)
    info = machine_info()
    with ensure_services(settings) as services:
        print(f"profile={settings.profile} products={args.products:,} rows={args.rows:,} rounds={args.rounds} "
              f"cpus={info.get('cpus', '?')} python={info.get('python', '?')}")
        met = asyncio.run(run(services.database_url, products=args.products, rows=args.rows,
                              rounds=args.rounds, limit=args.limit))
    print(f"\nall targets met: {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
