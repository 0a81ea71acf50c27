"""Robust summaries of timing samples: median and spread, never a mean alone."""

from __future__ import annotations

import pandas as pd


def summarize(samples: pd.DataFrame, *, by: str = "variant", value: str = "seconds") -> pd.DataFrame:
    """One row per ``by`` group: n, median, min, max, q1, q3, iqr and iqr as % of median.

    Groups keep their first-appearance order, so a chart built from the result
    lists variants in the order they were defined.
    """
    for column in (by, value):
        if column not in samples.columns:
            raise KeyError(f"samples has no column {column!r}; columns are {list(samples.columns)}")
    grouped = samples.groupby(by, sort=False)[value]
    out = pd.DataFrame({
        "n": grouped.count(),
        "median": grouped.median(),
        "min": grouped.min(),
        "max": grouped.max(),
        "q1": grouped.quantile(0.25),
        "q3": grouped.quantile(0.75),
    })
    out["iqr"] = out["q3"] - out["q1"]
    out["iqr_pct"] = 100.0 * out["iqr"] / out["median"]
    return out


def rate_summary(samples: pd.DataFrame, *, work: float, by: str = "variant",
                 value: str = "seconds", unit: str = "ops/s") -> pd.DataFrame:
    """Turn seconds per batch of ``work`` items into a throughput summary (median and quartiles)."""
    if work <= 0:
        raise ValueError(f"work must be > 0, got {work!r}")
    rates = samples.assign(**{unit: work / samples[value]})
    return summarize(rates, by=by, value=unit)


def figure(value: object, figures: int = 3) -> str:
    """``value`` as a reader wants it in a table: ``figures`` significant figures, never more decimals
    than that, thousands separated, whole numbers without ``.0``, and ``-`` for a missing value.

    A measurement repeated on a shared machine moves by a few per cent, so its fourth figure is noise:
    ``38332.123`` is shown ``38,332``, ``0.0041234`` ``0.00412``, ``48.0`` ``48``.
    """
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    magnitude = len(str(int(abs(value)))) if abs(value) >= 1 else 0  # digits before the point
    if magnitude >= figures:
        return f"{value:,.0f}"
    if magnitude > 0:
        return f"{value:,.{figures - magnitude}f}"
    return f"{value:.{figures}g}"


def readable(frame: pd.DataFrame, figures: int = 3) -> pd.io.formats.style.Styler:
    """``frame`` shown with every number at ``figures`` significant figures (see :func:`figure`); the
    data itself is untouched (a Styler only formats), so the numbers stay exact for code that reads them."""
    if figures < 1:
        raise ValueError(f"figures={figures!r} must be >= 1 (3 suits measurements that move by a few per cent)")
    return frame.style.format(lambda v: figure(v, figures))
