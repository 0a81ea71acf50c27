"""Load-test charts: percentile spectrum, over time, latency vs offered load, a concurrency sweep.

Thin wrappers over :mod:`perf.charts` (same titles, footers, and recorded into an open run alike), shaped
for :class:`~perf.load.results.LoadResult`, :class:`~perf.load.ramp.StressReport`
and :class:`~perf.load.concurrency.SweepReport`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from perf.charts import latency_percentiles, line_over, record_if_run_open
from perf.load.analysis.slo import parse_slo
from perf.load.concurrency import SweepReport
from perf.load.ramp import StressReport
from perf.load.results import LoadResult


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
    """p50 and p99 latency against the offered rate (log scale), with the latency SLOs as lines.

    Ramp and refine steps make the curves; the repeats of the max sustainable rate are crosses
    and the rate itself (the knee) a dotted vertical line.
    """
    steps = report.steps
    searched = steps[steps["phase"] != "repeat"]
    frame = pd.concat([searched.assign(percentile="p50", ms=searched["p50_ms"]),
                       searched.assign(percentile="p99", ms=searched["p99_ms"])], ignore_index=True)
    fig = line_over(frame, x="offered", y="ms", hue="percentile", title=title, save_as=False,
                    xlabel="offered load (requests/s)", ylabel="latency (ms, from scheduled send)", logy=True)
    ax = fig.axes[0]
    repeats = report.repeats
    if len(repeats):
        ax.scatter(repeats["offered"], repeats["p99_ms"], marker="x", color="black", zorder=3,
                   label=f"p99, {len(repeats)} repeats")
    if report.max_sustainable:  # the knee: the highest rate most of its repeats sustained
        ax.axvline(report.max_sustainable, color="green", linestyle=":", linewidth=1.5,
                   label=f"sustainable {report.max_sustainable:,.0f} req/s")
    for slo in (parse_slo(text) for text in report.slos):
        if slo.metric not in ("errors", "rps") and slo.endpoint is None:
            ax.axhline(slo.threshold * 1e3, color="red", linestyle="--", linewidth=1, label=f"SLO {slo.text}")
    ax.legend(fontsize=8)
    record_if_run_open(fig, title)
    return fig


def sweep_chart(report: SweepReport, *, title: str) -> Figure:
    """Throughput (left axis) and p99 latency (right axis) against users: where one flattens the other climbs."""
    levels = report.levels
    fig = line_over(levels.assign(series="throughput"), x="users", y="rps", hue="series", title=title,
                    save_as=False, xlabel="concurrent users (closed model)", ylabel="throughput (requests/s)",
                    logx=True)
    ax = fig.axes[0]
    right = ax.twinx()
    right.plot(levels["users"], levels["p99_ms"], marker="s", markersize=3, color="tab:red", label="p99")
    right.set_ylabel("p99 latency (ms)")
    if report.saturation is not None:
        ax.axvline(report.saturation, color="0.5", linestyle=":", linewidth=1,
                   label=f"stops growing ({report.saturation} users)")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="center right")
    record_if_run_open(fig, title)
    return fig
