"""prometheus_client's histogram as storage, for :mod:`perf.api.metrics` (checked against prometheus-client 0.26.0).

The API counts each request in a plain dict and folds the counts into its metrics when the
worker is idle and at least once a second (:class:`perf.api.metrics.ApiMetrics`): in
multiprocess mode each value update takes a lock, checks the pid and writes the mapped file
(~3 µs for a counter's, ~5.5 µs for a histogram observation here), and a request made three.
A counter adds any amount through its public ``inc(n)``; a histogram child has only
``observe(value)``, one value at a time. Adding ``n`` observations of one bucket needs its
storage, which :func:`observe_counts` is the one place to touch:

* ``Histogram`` child ``_sum`` and ``_buckets`` (one value per bucket, **not** cumulative:
  ``observe`` increments the first bucket whose upper bound holds the value; the cumulative
  ``le`` samples are summed when collected), ``_upper_bounds`` (ending in ``+Inf``).

``tests/test_compat.py`` checks them on the installed version. Upstream change that removes
this: a public bulk ``observe`` (or ``observe(value, count=n)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CHECKED", "observe_counts", "upper_bounds"]

#: The prometheus-client version these names were checked against (``requirements.txt``).
CHECKED = "0.26.0"


def upper_bounds(child: Any) -> tuple[float, ...]:
    """A histogram child's bucket upper bounds, ``+Inf`` last."""
    return tuple(child._upper_bounds)


def observe_counts(child: Any, counts: Sequence[int], total: float) -> None:
    """Add ``counts[i]`` observations to bucket ``i`` of a histogram ``child`` and ``total`` to its sum."""
    buckets = child._buckets
    if len(counts) != len(buckets):
        raise ValueError(f"counts has {len(counts)} buckets, the histogram {len(buckets)}")
    child._sum.inc(total)
    for value, n in zip(buckets, counts, strict=True):
        if n:
            value.inc(n)
