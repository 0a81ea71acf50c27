"""Benchmark: load generator ceilings against the same bare ASGI server, interleaved.

    python -m perf.bench.load                  # profile from PERF_PROFILE (quick by default)
    python -m perf.bench.load --rounds 5 --seconds 3

Targets (issue #8): the built-in driver reaches >= 0.5x wrk's req/s and >= 10x httpx's.
The server (uvicorn, uvloop + httptools) and the generator are pinned to different
cores where the machine has two or more. When wrk is not on PATH, its line says so.
"""

from __future__ import annotations

import argparse
import os
import sys

from perf.config import get_settings
from perf.load.analysis.calibrate import compare_drivers, driver_ratios
from perf.load.demo_server import TestServer
from perf.load.scale import run_event_loop
from perf.measure import describe, machine_info
from perf.services.server_process import pin_process, split_cores

TARGETS = (("wrk", 0.5), ("httpx", 10.0))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print req/s (median, IQR), ratios and targets; 0 when all targets met."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m perf.bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(settings.pick(3, 5)))  # type: ignore[call-overload]
    parser.add_argument("--seconds", type=float, default=float(settings.pick(2.0, 5.0)))  # type: ignore[arg-type]
    parser.add_argument("--users", type=int, default=32)
    args = parser.parse_args(argv)
    print(f"machine: {describe(machine_info())}")  # before pinning, which hides the other cores
    server_cpu, client_cpu = split_cores()
    pin_process(os.getpid(), client_cpu)
    print(f"server cores {sorted(server_cpu)}, generator cores {sorted(client_cpu)}; "
          f"{args.rounds} interleaved rounds of {args.seconds:g}s, {args.users} connections\n")
    with TestServer(cpu=server_cpu) as server:
        frame = run_event_loop(compare_drivers(server.url, rounds=args.rounds, seconds=args.seconds,
                                               users=args.users, cpu=client_cpu))
    stats = frame.groupby("driver")["rps"].describe()
    print(f"{'driver':<10}{'median req/s':>14}{'IQR req/s':>22}{'generator CPU':>15}")
    for driver in ("builtin", "httpx", "wrk"):
        if driver in frame.attrs["skipped"]:
            print(f"{driver:<10}{'unavailable':>14}  ({frame.attrs['skipped'][driver]})")
            continue
        rows = frame[frame["driver"] == driver]
        cpu = rows["cpu"].median()
        cpu_text = "n/a" if cpu != cpu else f"{cpu:.0%}"
        print(f"{driver:<10}{rows['rps'].median():>14,.0f}"
              f"{stats.loc[driver, '25%']:>11,.0f}-{stats.loc[driver, '75%']:<10,.0f}{cpu_text:>15}")
    print()
    all_met = True
    for other, target in TARGETS:
        if other in frame.attrs["skipped"]:
            print(f"builtin vs {other}: not measured ({other} unavailable); target >= {target:g}x")
            continue
        ratio = driver_ratios(frame, "builtin", other)
        met = ratio >= target
        all_met &= met
        print(f"builtin vs {other}: {ratio:.2f}x (median of round-by-round ratios; target >= {target:g}x: "
              f"{'MET' if met else 'NOT MET'})")
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
