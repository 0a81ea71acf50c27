"""Benchmarks: ``python -m perf.bench.NAME`` prints figures measured side by side in one run.

Each module is runnable and prints a table plus the ratios its issue names; none of
them asserts (tests assert behaviour, benchmarks print numbers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.bench.cache import decorator_overhead

# A measurement a notebook shows beside its benchmark, imported on first use.
_LAZY = {"decorator_overhead": "perf.bench.cache"}
__all__ = ["decorator_overhead", "rounds_verdict"]


def rounds_verdict(ratios: Iterable[float], target: float, *, at_least: bool) -> str:
    """``MET`` when every round's ratio meets ``target`` (``>=`` it when ``at_least``, else ``<=``),
    ``NOT MET`` when none does, ``inconclusive`` when the rounds fall on both sides.

    >>> rounds_verdict([0.65, 0.76], 0.9, at_least=True), rounds_verdict([1.2, 1.6], 1.5, at_least=False)
    ('NOT MET', 'inconclusive')
    """
    values = list(ratios)
    if not values:
        raise ValueError("ratios is empty: pass one ratio per round")
    met = [v >= target if at_least else v <= target for v in values]
    return "MET" if all(met) else "NOT MET" if not any(met) else "inconclusive"

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
