"""Intervals from a handful of rounds: Student's t on logs, and a least-squares slope.

A notebook has 3 to 20 rounds, never thousands, so resampling (a bootstrap of 3 values
has at most 10 distinct outcomes) cannot say how far the truth may lie. Student's t can:
it widens the interval for few rounds exactly as much as few rounds deserve (t at 99.5%
is 14 with 3 rounds, 3.7 with 10). Timings are skewed and ratios multiply, so intervals
are taken on logarithms, where a 2x and a 0.5x are equally far from 1.

No SciPy: the t quantile is found by bisection on the t distribution's CDF, computed
from the regularized incomplete beta function (Lentz's continued fraction).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom.

    >>> round(t_cdf(2.776, 4), 3)
    0.975
    """
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=1024)  # a notebook asks for the same few (p, df) pairs again and again
def t_quantile(p: float, df: float) -> float:
    """The t value below which a fraction ``p`` of Student's t distribution lies.

    >>> round(t_quantile(0.975, 4), 3), round(t_quantile(0.995, 2), 2)
    (2.776, 9.92)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be between 0 and 1 (exclusive), got {p!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _check_confidence(confidence: float) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence!r}; 0.995 is the workbook's default")


def _logs(name: str, values: Sequence[float]) -> list[float]:
    logs = []
    for i, value in enumerate(values):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name}[{i}] must be a positive, finite number, got {value!r}")
        logs.append(math.log(value))
    return logs


@dataclass(frozen=True)
class Interval:
    """A central estimate with its interval and the number of rounds behind it."""

    estimate: float
    low: float
    high: float
    n: int

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside [low, high]."""
        return value < self.low or value > self.high


def ratio_interval(ratios: Sequence[float], *, confidence: float = 0.995) -> Interval:
    """Interval of the typical ratio from paired rounds (geometric mean, t on the logs).

    >>> iv = ratio_interval([0.5, 0.52, 0.48, 0.5])
    >>> round(iv.estimate, 2), iv.low > 0.4, iv.high < 0.6
    (0.5, True, True)
    """
    _check_confidence(confidence)
    logs = _logs("ratios", ratios)
    n = len(logs)
    if n < 2:
        raise ValueError(f"ratios needs at least 2 rounds for an interval, got {n}")
    mean = statistics.fmean(logs)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    return Interval(math.exp(mean), math.exp(mean - half), math.exp(mean + half), n)


def unpaired_ratio_interval(a: Sequence[float], b: Sequence[float], *,
                            confidence: float = 0.995) -> Interval:
    """Interval of a / b from independent samples (Welch's t on the logs)."""
    _check_confidence(confidence)
    la, lb = _logs("a", a), _logs("b", b)
    if len(la) < 2 or len(lb) < 2:
        raise ValueError(f"each side needs at least 2 samples for an interval, got {len(la)} and {len(lb)}")
    va, vb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    diff = statistics.fmean(la) - statistics.fmean(lb)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(math.exp(diff), math.exp(diff), math.exp(diff), min(len(la), len(lb)))
    df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
    half = t_quantile(0.5 + confidence / 2.0, df) * se
    return Interval(math.exp(diff), math.exp(diff - half), math.exp(diff + half), min(len(la), len(lb)))


def slope_interval(x: Sequence[float], y: Sequence[float], *, confidence: float = 0.995) -> Interval:
    """Least-squares slope of ``y`` on ``x`` with its t interval (needs 3 points, 2 distinct x).

    >>> iv = slope_interval([1, 2, 3, 4], [2.0, 4.1, 5.9, 8.0])
    >>> round(iv.estimate, 1), iv.excludes(0.0)
    (2.0, True)
    """
    _check_confidence(confidence)
    if len(x) != len(y):
        raise ValueError(f"x and y must be the same length, got {len(x)} and {len(y)}")
    n = len(x)
    if n < 3:
        raise ValueError(f"a slope's interval needs at least 3 points, got {n}")
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxx = sum((xi - mx) ** 2 for xi in x)
    if sxx == 0.0:
        raise ValueError("x must hold at least two distinct values to fit a slope")
    slope = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y, strict=True)) / sxx
    residual = sum((yi - my - slope * (xi - mx)) ** 2 for xi, yi in zip(x, y, strict=True))
    half = t_quantile(0.5 + confidence / 2.0, n - 2) * math.sqrt(residual / (n - 2) / sxx)
    return Interval(slope, slope - half, slope + half, n)
