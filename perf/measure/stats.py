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
