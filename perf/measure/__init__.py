"""The measurement kit every notebook uses.

* :func:`time_sync` / :func:`time_async`: warm up, repeat, keep all samples.
* :func:`compare_sync` / :func:`compare_async`: interleaved A/B/C with round-by-round ratios;
  :func:`compare_cpu` the same in CPU time, for CPU-bound work on a shared machine.
* :func:`summarize`: median, min, max, quartiles, IQR.
* :class:`LatencyHistogram`: HDR percentiles, mergeable across processes.
* :class:`InProcessClient` / :func:`profile_requests`: an ASGI app called in process (no sockets),
  its lifespan run; where its time goes.
* :func:`machine_info` / :func:`service_versions`: what the numbers were measured on.
* :func:`compare` -> :class:`Verdict`: faster, slower, no difference we can detect, or inconclusive,
  from the rounds of two variants (an interval, never a point); :func:`trend`, :func:`crossover`,
  :func:`rank`, :func:`combine` and :func:`tail` judge the same way. Every computed sentence in a
  notebook comes from one of them, so prose never claims more than its run can show.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perf.measure.inprocess import InProcessClient, profile_requests
    from perf.measure.judgements import combine, crossover, rank, tail, trend
    from perf.measure.latency import DEFAULT_PERCENTILES, LatencyHistogram, percentile_table
    from perf.measure.machine import collect_machine_info, describe, machine_info, service_versions
    from perf.measure.memory import MemoryPeak, peak_memory, peak_memory_async
    from perf.measure.stats import rate_summary, summarize
    from perf.measure.timing import Comparison, Timing, compare_async, compare_cpu, compare_sync, time_async, time_sync
    from perf.measure.verdict import Verdict, compare

# Each name's module, imported on first use (PEP 562): the API server imports
# perf.measure.buckets for its /metrics and must not pay for pandas (about 1 s per process
# start) that only the notebooks' helpers need.
_HOMES = {
    "InProcessClient": "inprocess",
    "profile_requests": "inprocess",
    "combine": "judgements",
    "crossover": "judgements",
    "rank": "judgements",
    "tail": "judgements",
    "trend": "judgements",
    "DEFAULT_PERCENTILES": "latency",
    "LatencyHistogram": "latency",
    "percentile_table": "latency",
    "collect_machine_info": "machine",
    "describe": "machine",
    "machine_info": "machine",
    "service_versions": "machine",
    "MemoryPeak": "memory",
    "peak_memory": "memory",
    "peak_memory_async": "memory",
    "rate_summary": "stats",
    "summarize": "stats",
    "Comparison": "timing",
    "Timing": "timing",
    "compare_async": "timing",
    "compare_cpu": "timing",
    "compare_sync": "timing",
    "time_async": "timing",
    "time_sync": "timing",
    "Verdict": "verdict",
    "compare": "verdict",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'perf.measure' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"perf.measure.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "peak_memory",
    "peak_memory_async",
    "DEFAULT_PERCENTILES",
    "Comparison",
    "InProcessClient",
    "LatencyHistogram",
    "MemoryPeak",
    "Timing",
    "collect_machine_info",
    "Verdict",
    "combine",
    "compare",
    "compare_async",
    "compare_cpu",
    "compare_sync",
    "describe",
    "machine_info",
    "percentile_table",
    "profile_requests",
    "rank",
    "rate_summary",
    "service_versions",
    "summarize",
    "tail",
    "time_async",
    "time_sync",
    "trend",
    "crossover",
]
