"""What counting a request in Prometheus costs: the timing layer with and without :class:`ApiMetrics`, in process.

``python -m perf.bench.metrics [--rounds 5] [--number 2000]``

A tiny ASGI app (labels its route, answers 200) behind :class:`~perf.api.timing.TimingMiddleware`,
called in process (no sockets), with ``metrics=None`` and with an :class:`~perf.api.metrics.ApiMetrics`
in multiprocess mode, as ``python -m perf api`` serves it (memory-mapped files in a
temporary directory). Each round interleaves the two (:func:`perf.measure.compare_async`)
and yields one figure, the difference of their medians in µs per request; the rounds'
median and range are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perf.asgi import Receive, Scope, Send


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    from perf.api.metrics import set_route

    set_route(scope, "/products/{product_id}")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def metrics_cost(*, metrics_dir: str, rounds: int = 5, repeat: int = 15, number: int = 2000) -> list[float]:
    """µs per request the metrics add to the timing layer, one figure per round (``metrics_dir``: multiprocess)."""
    from perf.api.metrics import ApiMetrics
    from perf.api.timing import TimingMiddleware
    from perf.measure import InProcessClient, compare_async

    plain = InProcessClient(TimingMiddleware(_app), lifespan=False)
    counted = InProcessClient(TimingMiddleware(_app, metrics=ApiMetrics(multiprocess_dir=metrics_dir)), lifespan=False)
    figures = []
    for _ in range(rounds):
        comparison = await compare_async({"timing": lambda: plain.request("GET", "/products/7"),
                                          "timing + metrics": lambda: counted.request("GET", "/products/7")},
                                         warmup=2, repeat=repeat, number=number)
        medians = comparison.samples.groupby("variant")["seconds"].median()
        figures.append(float(medians["timing + metrics"] - medians["timing"]) * 1e6)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print µs per request per round, their median and range."""
    parser = argparse.ArgumentParser(prog="python -m perf.bench.metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000, help="requests per sample")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.rounds < 3:
        parser.error(f"--rounds={args.rounds}: use >= 3 (one round is a measurement, not a finding)")
    # before prometheus_client's first import, as the server's launcher does
    metrics_dir = tempfile.mkdtemp(prefix="perf-bench-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        figures = asyncio.run(metrics_cost(metrics_dir=metrics_dir, rounds=args.rounds, number=args.number))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    print("metrics cost per request (µs), by round:", " ".join(f"{f:.2f}" for f in figures))
    print(f"median {statistics.median(figures):.2f} µs, range {min(figures):.2f}-{max(figures):.2f} "
          f"({len(figures)} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
