"""Quantiles from a cumulative bucket histogram, as Prometheus' ``histogram_quantile`` computes them.

A Prometheus histogram keeps, per upper bound ``le``, how many observations were ``<= le``
(cumulative; the last bound is ``+Inf``). A quantile is found by walking to the first
bucket whose count reaches the rank and interpolating linearly inside it, so the answer is
exact only to the bucket: :func:`bucket_bounds` gives that bucket, the error bar of the
estimate.

>>> bounds = [0.001, 0.005, 0.01, float("inf")]
>>> bucket_quantile(bounds, [50, 90, 100, 100], 0.5)
0.001
>>> bucket_bounds(bounds, 0.003)
(0.001, 0.005)
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def bucket_quantile(bounds: Sequence[float], cumulative: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of a histogram with upper ``bounds`` and ``cumulative`` counts.

    Linear interpolation inside the bucket that holds the rank (the first bucket starts at
    0, as in Prometheus); a rank in the ``+Inf`` bucket answers the highest finite bound.
    NaN when the histogram is empty.
    """
    if len(bounds) != len(cumulative) or not bounds:
        raise ValueError(f"bounds ({len(bounds)}) and cumulative ({len(cumulative)}) need the same non-zero length")
    if not 0 <= q <= 1:
        raise ValueError(f"q={q!r} must be in [0, 1] (0.99 for p99)")
    if any(b > a for a, b in zip(bounds[1:], bounds, strict=False)):
        raise ValueError(f"bounds={list(bounds)} must be sorted ascending (the 'le' labels)")
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    rank = q * total
    below, lower = 0.0, 0.0
    for upper, count in zip(bounds, cumulative, strict=True):
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        below, lower = count, upper
    return lower


def bucket_bounds(bounds: Sequence[float], value: float) -> tuple[float, float]:
    """``(lower, upper)`` of the bucket ``value`` falls into (``lower < value <= upper``; the first from 0)."""
    lower = 0.0
    for upper in bounds:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf
