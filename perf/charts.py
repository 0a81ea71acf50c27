"""A small, consistent set of charts: bars with spread, a line over a parameter, latency percentiles.

Every chart has a title, labelled axes with units and a footer naming the
machine it was measured on, and is saved as a PNG under
``settings.build_dir / "charts"`` as well as returned for inline display.
End a notebook cell with ``plt.show()`` so nbval compares no figure repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from perf.config import get_settings
from perf.measure.latency import LatencyHistogram
from perf.measure.machine import describe, machine_info

UNITS: dict[str, float] = {"s": 1.0, "ms": 1e3, "µs": 1e6, "us": 1e6, "ns": 1e9}
#: ``unit=RAW`` plots the values as they are (rates, ratios): no scaling, no unit in the label.
RAW = ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "chart"


def save_figure(fig: Figure, name: str, *, directory: Path | None = None) -> Path:
    """Save ``fig`` as ``<build_dir>/charts/<name>.png`` and return the path."""
    directory = directory or get_settings().build_dir / "charts"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_slug(name)}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _finish(fig: Figure, title: str, info: Mapping[str, Any] | None,
            save_as: str | Literal[False] | None) -> Figure:
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.99, 0.005, describe(dict(info or machine_info())), ha="right", va="bottom",
             fontsize=7, color="0.45")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    if save_as is not False:
        save_figure(fig, save_as or title)
    return fig


def _scale(unit: str) -> float:
    if unit == RAW:
        return 1.0
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)} (times) or '' (values as they are), got {unit!r}")
    return UNITS[unit]


def bar_with_spread(summary: pd.DataFrame, *, title: str, unit: str = "ms", value_label: str = "time",
                    spread: str = "iqr", info: Mapping[str, Any] | None = None,
                    save_as: str | Literal[False] | None = None, log: bool = False, annotate: bool = True) -> Figure:
    """Horizontal bars of the median per row of ``summary`` (from :func:`perf.measure.summarize`).

    Whiskers show the interquartile range (``spread="iqr"``) or min..max
    (``spread="range"``). Values in seconds are converted to ``unit``; pass
    ``unit=""`` for a summary of rates or ratios, plotted as they are and named
    by ``value_label`` (e.g. ``"rows/s"``).
    """
    if spread not in ("iqr", "range"):
        raise ValueError(f"spread must be 'iqr' or 'range', got {spread!r}")
    scale = _scale(unit)
    med = summary["median"] * scale
    lo, hi = (summary["q1"], summary["q3"]) if spread == "iqr" else (summary["min"], summary["max"])
    err = np.vstack([med - lo * scale, hi * scale - med]).clip(min=0)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(summary) + 1.6))
    labels = [str(i) for i in summary.index]
    ax.barh(labels, med, xerr=err, color="#4C72B0", alpha=0.85, capsize=4)
    ax.invert_yaxis()
    whiskers = "IQR" if spread == "iqr" else "min..max"
    ax.set_xlabel(f"{value_label} ({unit + ', ' if unit else ''}median; whiskers {whiskers})")
    if log:
        ax.set_xscale("log")
    if annotate:
        # Label past the whisker so the number never sits on it.
        for y, (value, right) in enumerate(zip(med, med + err[1])):
            ax.annotate(f"  {value:,.3g}", (right, y), va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, title, info, save_as)


def line_over(frame: pd.DataFrame, *, x: str, y: str, hue: str | None = None, title: str,
              xlabel: str | None = None, ylabel: str | None = None, logx: bool = False,
              logy: bool = False, band: tuple[str, str] | None = None,
              info: Mapping[str, Any] | None = None, save_as: str | Literal[False] | None = None) -> Figure:
    """One line per ``hue`` group of ``y`` against ``x``; ``band=(low_col, high_col)`` shades spread."""
    for column in [x, y, hue, *(band or ())]:
        if column is not None and column not in frame.columns:
            raise KeyError(f"frame has no column {column!r}; columns are {list(frame.columns)}")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups = frame.groupby(hue, sort=False) if hue else [(y, frame)]
    for name, group in groups:
        group = group.sort_values(x)
        ax.plot(group[x], group[y], marker="o", markersize=3, label=str(name))
        if band:
            ax.fill_between(group[x], group[band[0]], group[band[1]], alpha=0.2)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if hue:
        ax.legend(title=hue, fontsize=8)
    return _finish(fig, title, info, save_as)


def latency_percentiles(histograms: Mapping[str, LatencyHistogram], *, title: str, unit: str = "ms",
                        info: Mapping[str, Any] | None = None,
                        save_as: str | Literal[False] | None = None) -> Figure:
    """Latency by percentile (x: 50%..99.99% on a "nines" scale), one line per histogram."""
    scale = _scale(unit)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, hist in histograms.items():
        if hist.count == 0:
            continue
        spectrum = hist.spectrum()
        spectrum = spectrum[spectrum["percentile"] < 100.0]
        nines = 1.0 / (1.0 - spectrum["percentile"] / 100.0)
        ax.plot(nines, spectrum["seconds"] * scale, label=f"{name} (n={hist.count:,})")
    ax.set_xscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000]
    ax.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
    ax.set_xlim(1, 10000)
    ax.set_xlabel("percentile")
    ax.set_ylabel(f"latency ({unit})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(fig, title, info, save_as)


def use_headless_backend() -> None:
    """Switch matplotlib to Agg (for scripts and benchmarks without a display)."""
    matplotlib.use("Agg", force=True)
