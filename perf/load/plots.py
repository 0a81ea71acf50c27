"""Load-test charts: percentile spectrum, throughput and latency over time, latency vs offered load.

Thin wrappers over :mod:`perf.charts` (same titles, footers and saved PNGs), shaped
for :class:`~perf.load.results.LoadResult` and :class:`~perf.load.stress.StressReport`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from perf.charts import latency_percentiles, line_over
from perf.load.results import LoadResult
from perf.load.stress import StressReport


def spectrum_chart(results: Mapping[str, LoadResult], *, title: str) -> Figure:
    """Latency by percentile, one line per named result (all endpoints together)."""
    return latency_percentiles({name: r.overall() for name, r in results.items()}, title=title)


def over_time_chart(results: Mapping[str, LoadResult], *, title: str, y: str = "rps") -> Figure:
    """``rps``, ``errors``, ``p50_ms`` or ``p99_ms`` per second, one line per named result."""
    frames = []
    for name, result in results.items():
        frame = result.timeseries()
        frame["run"] = name
        frames.append(frame)
    labels = {"rps": "responses per second", "errors": "errors per second",
              "p50_ms": "p50 latency (ms)", "p99_ms": "p99 latency (ms)"}
    if y not in labels:
        raise ValueError(f"y must be one of {sorted(labels)}, got {y!r}")
    return line_over(pd.concat(frames, ignore_index=True), x="second", y=y, hue="run", title=title,
                     xlabel="second of the run", ylabel=labels[y])


def knee_chart(report: StressReport, *, title: str) -> Figure:
    """p50 and p99 latency against the offered rate (log scale): where the curve turns is the knee."""
    steps = report.steps
    frame = pd.concat([steps.assign(percentile="p50", ms=steps["p50_ms"]),
                       steps.assign(percentile="p99", ms=steps["p99_ms"])], ignore_index=True)
    return line_over(frame, x="offered", y="ms", hue="percentile", title=title,
                     xlabel="offered load (requests/s)", ylabel="latency (ms, from scheduled send)", logy=True)
