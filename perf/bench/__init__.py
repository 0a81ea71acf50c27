"""Benchmarks: ``python -m perf.bench.NAME`` prints figures measured side by side in one run.

Each module is runnable and prints a table plus the ratios its issue names; none of
them asserts (tests assert behaviour, benchmarks print numbers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.bench.cache import decorator_overhead

# A measurement a notebook shows beside its benchmark, imported on first use.
_LAZY = {"decorator_overhead": "perf.bench.cache"}
__all__ = ["decorator_overhead"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
