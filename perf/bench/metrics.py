"""What counting a request in Prometheus costs: the timing layer with and without :class:`ApiMetrics`, in process.

``python -m perf.bench.metrics [--rounds 5] [--number 2000]``

A tiny ASGI app (labels its route, answers 200) behind :class:`~perf.api.timing.TimingMiddleware`,
called in process (no sockets), with ``metrics=None`` and with an :class:`~perf.api.metrics.ApiMetrics`
in multiprocess mode, as ``python -m perf api`` serves it (memory-mapped files in a
temporary directory), twice:

* **idle**: nothing else in flight, so every response is folded into the metrics at once
  (what a lightly loaded server pays, and what a request cost before counts were folded);
* **busy**: another request in flight the whole time (as under load), so responses are counted
  in plain dicts and folded between rounds, as the sampler folds once a second: one update
  per label set, a few µs a second, nothing a request pays.

Each round interleaves the three (:func:`perf.measure.compare_async`) and yields one figure
per metrics variant, the difference of its median from the plain timing layer's in µs per
request; the rounds' median and range are printed.
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


IDLE, BUSY = "idle (folded per response)", "busy (folded per sample)"


async def metrics_cost(*, metrics_dir: str, rounds: int = 5, repeat: int = 15,
                       number: int = 2000) -> dict[str, list[float]]:
    """µs per request the metrics add to the timing layer, idle and busy: one figure a round each.

    ``metrics_dir``: the multiprocess directory (set as ``PROMETHEUS_MULTIPROC_DIR`` before
    prometheus_client's first import).
    """
    from perf.api.metrics import ApiMetrics
    from perf.api.timing import TimingMiddleware
    from perf.measure import InProcessClient, compare_async

    plain = InProcessClient(TimingMiddleware(_app), lifespan=False)
    idle = InProcessClient(TimingMiddleware(_app, metrics=ApiMetrics(multiprocess_dir=metrics_dir)), lifespan=False)
    busy_metrics = ApiMetrics(multiprocess_dir=metrics_dir)
    busy_metrics.active = 1  # the other request in flight, the whole time
    busy = InProcessClient(TimingMiddleware(_app, metrics=busy_metrics), lifespan=False)
    figures: dict[str, list[float]] = {IDLE: [], BUSY: []}
    for _ in range(rounds):
        comparison = await compare_async({"timing": lambda: plain.request("GET", "/products/7"),
                                          IDLE: lambda: idle.request("GET", "/products/7"),
                                          BUSY: lambda: busy.request("GET", "/products/7")},
                                         warmup=2, repeat=repeat, number=number)
        busy_metrics.publish()  # the sampler's fold: one update per label set, once a second
        medians = comparison.samples.groupby("variant")["seconds"].median()
        for variant, found in figures.items():
            found.append(float(medians[variant] - medians["timing"]) * 1e6)
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
    for variant, found in figures.items():
        print(f"metrics cost per request, {variant}: median {statistics.median(found):.2f} µs, range "
              f"{min(found):.2f}-{max(found):.2f} ({len(found)} rounds: {' '.join(f'{f:.2f}' for f in found)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
