"""Benchmark: ratio and MB/s per codec and level, and the middleware's cost over the codec.

    python -m perf.bench.compression             # profile from PERF_PROFILE (quick by default)
    python -m perf.bench.compression --size 1000000 --repeat 15 --rounds 100

On a realistic product-list JSON: ratio and compress / decompress MB/s for every codec
and level, then the CPU per response of ``CompressionMiddleware`` around a 100 KB body
vs calling the compressor directly, interleaved in one run. Target (issue #6): <= 1.1x.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import pandas as pd

from perf.compression.codecs import DEFAULT_LEVELS
from perf.compression.demo_race import codec_curve, level_grid, middleware_overhead
from perf.compression.payloads import product_list_json
from perf.config import get_settings
from perf.measure import machine_info
from perf.measure.machine import describe

TARGET_OVERHEAD = 1.1


def report_curve(curve: pd.DataFrame, *, out: TextIO | None = None) -> None:
    """Print ratio and MB/s per codec/level, marking the default level."""
    out = out or sys.stdout
    print(f"{'codec-level':<14}{'ratio':>7}{'bytes out':>11}{'compress MB/s':>15}{'IQR %':>7}"
          f"{'decompress MB/s':>17}", file=out)
    for row in curve.itertuples():
        mark = "  <- default" if DEFAULT_LEVELS[row.codec] == row.level else ""
        print(f"{row.label:<14}{row.ratio:>7.2f}{row.bytes_out:>11,}{row.compress_mb_s:>15,.1f}"
              f"{row.compress_iqr_pct:>7.0f}{row.decompress_mb_s:>17,.1f}{mark}", file=out)


def report_overhead(table: pd.DataFrame, *, out: TextIO | None = None) -> bool:
    """Print middleware vs direct per coding with the target; True when every ratio meets it."""
    out = out or sys.stdout
    all_met = True
    for row in table.itertuples():
        met = row.ratio <= TARGET_OVERHEAD
        all_met &= met
        print(f"{row.coding:<10} direct {row.direct_s * 1e3:7.3f} ms  middleware {row.middleware_s * 1e3:7.3f} ms "
              f"(IQR {row.middleware_iqr_pct:.0f}%)  ratio {row.ratio:.3f}x "
              f"(target <= {TARGET_OVERHEAD}x: {'MET' if met else 'NOT MET'})", file=out)
    return all_met


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 0 whether or not the target is met (it is a report)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.compression", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="payload bytes for the codec table")
    parser.add_argument("--repeat", type=int, default=settings.pick(5, 15), help="rounds for the codec table")
    parser.add_argument("--rounds", type=int, default=settings.pick(30, 100), help="rounds for the overhead")
    args = parser.parse_args(argv)
    print(f"# perf.bench.compression ({settings.profile}) on {describe(machine_info())}")
    body = product_list_json(args.size)
    print(f"\n## codecs on a {len(body):,}-byte product-list JSON (median of {args.repeat} interleaved rounds)")
    report_curve(codec_curve(body, level_grid(full=not settings.quick), repeat=args.repeat))
    body_100k = product_list_json(100_000)
    rounds = args.rounds
    print(f"\n## CompressionMiddleware vs the compressor alone, {len(body_100k):,}-byte response, "
          f"{rounds} interleaved rounds")
    report_overhead(middleware_overhead(body_100k, repeat=rounds, number=settings.pick(3, 5)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
