"""Service-level objectives as strings, checked against a :class:`~perf.load.results.LoadResult`.

Grammar: ``[ENDPOINT:]METRIC OP VALUE[UNIT]``, e.g. ``p99<50ms``, ``p99.9<=0.2s``,
``errors<0.1%``, ``rps>=400``, ``list:p50<5ms``. Metrics: ``p<N>`` (any percentile),
``max``, ``mean`` (units ``us``/``µs``/``ms``/``s``, default ms), ``errors`` (``%`` or a
fraction), ``rps``. Operators: ``<``, ``<=``, ``>``, ``>=``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from perf.load.results import LoadResult

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_LATENCY_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "": 1e-3}
_PATTERN = re.compile(r"^\s*(?:(?P<endpoint>[^:<>=]+):)?\s*(?P<metric>p\d+(?:\.\d+)?|max|mean|errors|rps)\s*"
                      r"(?P<op><=|>=|<|>)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s|%|/s)?\s*$")


class SloError(ValueError):
    """An SLO string that does not parse; the message shows the grammar."""


@dataclass(frozen=True)
class Slo:
    """One objective; ``threshold`` is in seconds (latency), a fraction (errors) or req/s (rps)."""

    text: str
    metric: str
    op: str
    threshold: float
    endpoint: str | None = None

    def measure(self, result: LoadResult) -> float:
        """The measured value in the same unit as ``threshold``."""
        if self.metric == "errors":
            return result.error_rate
        if self.metric == "rps":
            return result.throughput
        if self.endpoint is None:
            hist = result.overall()
        elif self.endpoint in result.histograms:
            hist = result.histograms[self.endpoint]
        else:
            raise SloError(f"SLO {self.text!r}: no endpoint {self.endpoint!r} in the result; "
                           f"endpoints are {sorted(result.histograms)}")
        if hist.count == 0:
            return float("inf")  # nothing answered: a latency objective cannot be met
        if self.metric == "max":
            return hist.percentiles()["max"]
        if self.metric == "mean":
            return hist.mean
        return hist.percentile(float(self.metric[1:]))


@dataclass(frozen=True)
class SloCheck:
    """An objective with the value measured and whether it was met."""

    slo: Slo
    value: float
    met: bool

    def describe(self) -> str:
        """``p99<50ms: 12.3 ms ✓``."""
        if self.slo.metric == "errors":
            shown = f"{self.value:.3%}"
        elif self.slo.metric == "rps":
            shown = f"{self.value:,.1f} req/s"
        else:
            shown = f"{self.value * 1e3:,.2f} ms"
        return f"{self.slo.text}: {shown} {'met' if self.met else 'MISSED'}"


def parse_slo(text: str) -> Slo:
    """Parse one SLO string (see the module docstring for the grammar)."""
    match = _PATTERN.match(text or "")
    if not match:
        raise SloError(f"cannot parse SLO {text!r}: write [ENDPOINT:]METRIC OP VALUE[UNIT], "
                       "e.g. 'p99<50ms', 'errors<0.1%', 'rps>=400' (metrics p<N>, max, mean, errors, rps)")
    metric, op, unit = match["metric"], match["op"], match["unit"] or ""
    value = float(match["value"])
    if metric == "errors":
        if unit not in ("", "%"):
            raise SloError(f"SLO {text!r}: errors take '%' or a fraction, not {unit!r} (e.g. 'errors<0.1%')")
        threshold = value / 100 if unit == "%" else value
        if not 0 <= threshold <= 1:
            raise SloError(f"SLO {text!r}: an error rate must be within 0..100%, got {value}{unit}")
    elif metric == "rps":
        if unit not in ("", "/s"):
            raise SloError(f"SLO {text!r}: rps takes a plain number (e.g. 'rps>=400'), not {unit!r}")
        threshold = value
    else:
        if unit not in _LATENCY_UNITS:
            raise SloError(f"SLO {text!r}: latency units are us, ms or s, not {unit!r} (e.g. 'p99<50ms')")
        if metric.startswith("p") and not 0 < float(metric[1:]) <= 100:
            raise SloError(f"SLO {text!r}: percentile must be in (0, 100], got {metric[1:]}")
        threshold = value * _LATENCY_UNITS[unit]
    endpoint = match["endpoint"].strip() if match["endpoint"] else None
    return Slo(text.strip(), metric, op, threshold, endpoint)


def check_slos(result: LoadResult, slos: Iterable[str | Slo]) -> list[SloCheck]:
    """Measure each objective on ``result``."""
    checks = []
    for item in slos:
        slo = parse_slo(item) if isinstance(item, str) else item
        value = slo.measure(result)
        checks.append(SloCheck(slo, value, _OPS[slo.op](value, slo.threshold)))
    return checks
