"""A small, consistent set of charts: bars with spread, a line over a parameter, latency percentiles.

Every chart has a title, labelled axes with units, numbers in plain units (``2,580``,
never ``2.58e+03``) and a footer naming the machine it was measured on, the same for
every chart of a run. It is returned for inline display. End a notebook cell with
``plt.show()`` so nbval compares no figure repr.

**Recording** a chart into a run (:mod:`perf.runs`) saves it as a PNG *together with the
frame it shows* as CSV. Drawing records only into a run that is already open (one this
process started, or the workbook's): it never starts a run, calls git or collects the
machine's facts. :func:`record_chart` records explicitly, starting this process's run if
needed; ``save_as`` names the recording, ``save_as=False`` keeps a chart out of every run.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from perf.measure.latency import LatencyHistogram
from perf.measure.machine import describe, machine_info
from perf.measure.timing import PER_SECOND
from perf.runs.store import Run, active_run, current_run

UNITS = PER_SECOND  # one table of time units for charts and tables
#: ``unit=RAW`` plots the values as they are (rates, ratios): no scaling, no unit in the label.
RAW = ""
#: Column names that say nothing as a legend title (pandas' ``melt`` default and friends).
GENERIC_NAMES = frozenset({"variable", "label", "series", "value", "name", "kind"})
Save = str | Literal[False] | None


@dataclass(frozen=True)
class _Shown:
    """What a drawn chart records under: its name, title, the frame it shows and that frame's unit."""

    name: str
    title: str
    frame: pd.DataFrame | None
    unit: str | None


#: Each chart drawn here (and not ``save_as=False``), until matplotlib lets the figure go.
_SHOWN: weakref.WeakKeyDictionary[Figure, _Shown] = weakref.WeakKeyDictionary()


def plain(value: float) -> str:
    """A number the way a reader writes it: ``2,580``, ``41.3``, ``2.58``, ``0.0123`` (no exponent).

    >>> [plain(v) for v in (2580.4, 41.27, 2.583, 0.01234, 0, 5.0)]
    ['2,580', '41.3', '2.58', '0.0123', '0', '5']
    """
    if not np.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return np.format_float_positional(value, precision=3, unique=True, fractional=False, trim="-")


def _plain_axis(axis: Axis, values: Sequence[float] | None = None) -> None:
    """Label a log axis in plain numbers: at the data's own values when few, else at 1-2-5 steps."""
    formatter = FuncFormatter(lambda v, _pos: plain(v))
    distinct = sorted({float(v) for v in values if v > 0}) if values is not None else []
    if 0 < len(distinct) <= 12:
        axis.set_major_locator(FixedLocator(distinct))
    else:
        low, high = axis.get_view_interval()
        wide = low > 0 and high / low > 30  # 1-2-5 labels over more than ~1.5 decades run into each other
        axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(formatter)
    axis.set_minor_locator(NullLocator())


def record_chart(fig: Figure, name: str | None = None, *, run: Run | None = None) -> Path:
    """Record ``fig`` into ``run`` (default: this process's run, started if there is none): its PNG,
    and the frame it shows as CSV when a chart of this module drew it. Returns the PNG's path.

    ``name`` defaults to the chart's ``save_as`` or title.

    >>> record_chart(charts.bar_with_spread(summary, title="Round trip"))   # doctest: +SKIP
    """
    shown = _SHOWN.get(fig)
    name = name or (shown.name if shown is not None else fig.get_suptitle())
    if not name:
        raise ValueError("name is empty and the figure has no title: pass record_chart(fig, name='...')")
    run = run or current_run()
    path = run.save_chart(fig, name)
    if shown is not None and shown.frame is not None:
        run.record(name, shown.frame, unit=shown.unit, title=shown.title)
    return path


def record_if_run_open(fig: Figure, name: str | None = None) -> Path | None:
    """:func:`record_chart` into the run already open (:func:`perf.runs.active_run`), if any: what drawing does.

    Starts no run: None when this process has none.
    """
    run = active_run()
    return None if run is None else record_chart(fig, name, run=run)


def footer(info: Mapping[str, Any] | None = None) -> str:
    """The chart footer: the open run's machine (CPU count taken once per run), else this machine's,
    plus ``info``'s versions."""
    meta: dict[str, Any] | None = None
    run = active_run()
    if run is not None:
        try:
            meta = run.meta()
        except OSError:
            meta = None
    base = machine_info() if meta is None else {**meta.get("machine", {}), **meta.get("services", {})}
    merged = {**base, **{k: v for k, v in (info or {}).items() if k not in ("cpus", "cpus_usable")}}
    return describe(merged)


def _finish(fig: Figure, title: str, info: Mapping[str, Any] | None, save_as: Save,
            frame: pd.DataFrame | None = None, unit: str | None = None) -> Figure:
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.text(0.99, 0.005, footer(info), ha="right", va="bottom", fontsize=7, color="0.45")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    if save_as is not False:
        _SHOWN[fig] = _Shown(save_as or title, title, frame, unit)
        record_if_run_open(fig)
    return fig


def shown_unit(unit: str) -> str:
    """A unit as a reader writes it (``"us"`` -> ``"µs"``)."""
    return "µs" if unit == "us" else unit


def _scale(unit: str) -> float:
    if unit == RAW:
        return 1.0
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {sorted(UNITS)} (times) or '' (values as they are), got {unit!r}")
    return UNITS[unit]


def _ordered(summary: pd.DataFrame, order: Sequence[str] | None, baseline: str | None) -> pd.DataFrame:
    """Rows in ``order`` (or as given), with ``baseline`` (or the row whose ratio is 1) first."""
    labels = [str(i) for i in summary.index]
    if order is not None:
        missing = [o for o in order if o not in labels]
        if missing:
            raise KeyError(f"order names rows {missing} that the summary lacks; rows are {labels}")
        labels = list(order) + [x for x in labels if x not in order]
    if baseline is None and "ratio_to_baseline" in summary.columns:
        ones = [str(i) for i, r in summary["ratio_to_baseline"].items() if r == 1.0]
        baseline = ones[0] if len(ones) == 1 else None
    if baseline is not None:
        if baseline not in labels:
            raise KeyError(f"baseline {baseline!r} is not a row of the summary; rows are {labels}")
        labels = [baseline] + [x for x in labels if x != baseline]
    frame = summary.copy()
    frame.index = pd.Index([str(i) for i in frame.index], name=summary.index.name)
    return frame.loc[labels]


def bar_with_spread(summary: pd.DataFrame, *, title: str, unit: str = "ms", value_label: str = "time",
                    spread: str = "iqr", info: Mapping[str, Any] | None = None, save_as: Save = None,
                    log: bool = False, annotate: bool = True, order: Sequence[str] | None = None,
                    baseline: str | None = None) -> Figure:
    """Horizontal bars of the median per row of ``summary`` (from :func:`perf.measure.summarize`).

    Whiskers show the interquartile range (``spread="iqr"``) or min..max
    (``spread="range"``); with fewer than 3 samples per row there is no spread to
    show and no whiskers are drawn. Values in seconds are converted to ``unit``;
    pass ``unit=""`` for rates or ratios, named by ``value_label`` (e.g. ``"rows/s"``).
    Rows keep their order (``order`` to set it), the ``baseline`` row (or the one whose
    ``ratio_to_baseline`` is 1) first.
    """
    if spread not in ("iqr", "range"):
        raise ValueError(f"spread must be 'iqr' or 'range', got {spread!r}")
    scale = _scale(unit)
    summary = _ordered(summary, order, baseline)
    med = summary["median"] * scale
    lo, hi = (summary["q1"], summary["q3"]) if spread == "iqr" else (summary["min"], summary["max"])
    err = np.vstack([med - lo * scale, hi * scale - med]).clip(min=0)
    few = "n" in summary.columns and bool((summary["n"] < 3).any())
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(summary) + 1.6))
    ax.barh(list(summary.index), med, xerr=None if few else err, color="#4C72B0", alpha=0.85, capsize=4)
    ax.invert_yaxis()
    whiskers = "no whiskers: < 3 repeats" if few else ("whiskers IQR" if spread == "iqr" else "whiskers min..max")
    ax.set_xlabel(f"{value_label} ({shown_unit(unit) + ', ' if unit else ''}median; {whiskers})")
    if log:
        ax.set_xscale("log")
        _plain_axis(ax.xaxis)
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: plain(v)))
    if annotate:
        # Label past the whisker so the number never sits on it.
        rights = med if few else med + err[1]
        for y, (value, right) in enumerate(zip(med, rights, strict=True)):
            ax.annotate(f"  {plain(value)}{' ' + shown_unit(unit) if unit else ''}", (right, y), va="center",
                        fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, title, info, save_as, summary, unit="s" if unit else value_label)


def line_over(frame: pd.DataFrame, *, x: str, y: str, hue: str | None = None, title: str,
              xlabel: str | None = None, ylabel: str | None = None, logx: bool = False,
              logy: bool = False, band: tuple[str, str] | None = None, legend_title: str | None = None,
              info: Mapping[str, Any] | None = None, save_as: Save = None) -> Figure:
    """One line per ``hue`` group of ``y`` against ``x``; ``band=(low_col, high_col)`` shades spread.

    The legend is titled ``legend_title``, else ``hue`` unless that is a generic name
    (``variable``, ``label``, ...). Log axes are labelled in plain numbers at the data's values.
    """
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
        _plain_axis(ax.xaxis, list(frame[x]))
    if logy:
        ax.set_yscale("log")
        _plain_axis(ax.yaxis)
    ax.grid(alpha=0.3)
    if hue:
        title_text = legend_title if legend_title is not None else ("" if hue in GENERIC_NAMES else hue)
        if frame[hue].nunique() > 2:  # beside the plot: three or more labels inside would cover the lines
            ax.legend(title=title_text or None, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        else:
            ax.legend(title=title_text or None, fontsize=8)
    columns = [c for c in (hue, x, y, *(band or ())) if c is not None]
    return _finish(fig, title, info, save_as, frame[columns].reset_index(drop=True))


#: The nines scale: x = 1 / (1 - percentile); tick positions and their labels.
_NINES = [(2, "50%"), (10, "90%"), (100, "99%"), (1000, "99.9%"), (10000, "99.99%"), (100000, "99.999%")]


def latency_percentiles(histograms: Mapping[str, LatencyHistogram], *, title: str, unit: str = "ms",
                        info: Mapping[str, Any] | None = None, save_as: Save = None,
                        logy: bool | None = None) -> Figure:
    """Latency by percentile on a "nines" scale, one line per histogram.

    Each line stops at the percentile its sample size supports (with n samples, about
    ``1 - 1/n``: p99.9 needs 1,000), and the axis at the largest of them. ``logy`` (default:
    when the lines' medians are over 10x apart) keeps a slow line from flattening the others.
    """
    scale = _scale(unit)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    rows = []
    top = 2.0
    for name, hist in histograms.items():
        if hist.count == 0:
            continue
        spectrum = hist.spectrum()
        nines = 1.0 / (1.0 - spectrum["percentile"] / 100.0).clip(lower=1e-9)
        supported = (spectrum["percentile"] < 100.0) & (nines <= max(hist.count, 2))
        ax.plot(nines[supported], spectrum["seconds"][supported] * scale, label=f"{name} (n={hist.count:,})")
        top = max(top, min(float(hist.count), 100000.0))
        rows.append({"histogram": name, **{k: (v * 1e3 if k != "count" else v)
                                           for k, v in hist.percentiles().items()}})
    ax.set_xscale("log")
    ticks = [(1, "0%")] + [(t, label) for t, label in _NINES if t <= top]
    ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(1, top)
    ax.set_xlabel("percentile (each line ends where its sample size n supports)")
    ax.set_ylabel(f"latency ({shown_unit(unit)})")
    medians = [hist.percentile(50) for hist in histograms.values() if hist.count]
    if logy is None:
        logy = len(medians) > 1 and min(medians) > 0 and max(medians) > 10 * min(medians)
    if logy:
        ax.set_yscale("log")
        _plain_axis(ax.yaxis)
        ax.set_ylabel(f"latency ({shown_unit(unit)}, log scale)")
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: plain(v)))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    table = pd.DataFrame(rows)
    table.columns = [c if c in ("histogram", "count") else f"{c}_ms" for c in table.columns]
    return _finish(fig, title, info, save_as, table)
