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

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.measure.inprocess import InProcessClient, profile_requests
    from perf.measure.judgements import combine, crossover, rank, tail, trend
    from perf.measure.latency import DEFAULT_PERCENTILES, LatencyHistogram, percentile_table
    from perf.measure.machine import collect_machine_info, describe, machine_info, service_versions
    from perf.measure.memory import MemoryPeak, peak_memory, peak_memory_async
    from perf.measure.stats import figure, rate_summary, readable, summarize
    from perf.measure.timing import Comparison, Timing, compare_async, compare_cpu, compare_sync, time_async, time_sync
    from perf.measure.verdict import Verdict, compare

# Each name's module is imported on first use (perf.lazy): the API server imports
# perf.measure.buckets for its /metrics and must not pay for pandas (about 1 s per process
# start) that only the notebooks' helpers need.
__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    "InProcessClient": "perf.measure.inprocess",
    "profile_requests": "perf.measure.inprocess",
    "combine": "perf.measure.judgements",
    "crossover": "perf.measure.judgements",
    "rank": "perf.measure.judgements",
    "tail": "perf.measure.judgements",
    "trend": "perf.measure.judgements",
    "DEFAULT_PERCENTILES": "perf.measure.latency",
    "LatencyHistogram": "perf.measure.latency",
    "percentile_table": "perf.measure.latency",
    "collect_machine_info": "perf.measure.machine",
    "describe": "perf.measure.machine",
    "machine_info": "perf.measure.machine",
    "service_versions": "perf.measure.machine",
    "MemoryPeak": "perf.measure.memory",
    "peak_memory": "perf.measure.memory",
    "peak_memory_async": "perf.measure.memory",
    "figure": "perf.measure.stats",
    "rate_summary": "perf.measure.stats",
    "readable": "perf.measure.stats",
    "summarize": "perf.measure.stats",
    "Comparison": "perf.measure.timing",
    "Timing": "perf.measure.timing",
    "compare_async": "perf.measure.timing",
    "compare_cpu": "perf.measure.timing",
    "compare_sync": "perf.measure.timing",
    "time_async": "perf.measure.timing",
    "time_sync": "perf.measure.timing",
    "Verdict": "perf.measure.verdict",
    "compare": "perf.measure.verdict",
})

__all__ = [
    "Comparison", "DEFAULT_PERCENTILES", "InProcessClient", "LatencyHistogram", "MemoryPeak", "Timing", "Verdict",
    "collect_machine_info", "combine", "compare", "compare_async", "compare_cpu", "compare_sync", "crossover",
    "describe", "figure", "machine_info", "peak_memory", "peak_memory_async", "percentile_table",
    "profile_requests", "rank", "rate_summary", "readable", "service_versions", "summarize", "tail", "time_async",
    "time_sync", "trend",
]
