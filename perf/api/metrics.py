"""Prometheus metrics of the product API, summed over every worker: :class:`ApiMetrics`.

One :class:`ApiMetrics` per app instance (one per worker process) holds the metrics in its
own ``CollectorRegistry``. Served by ``python -m perf api``, every worker writes them to
prometheus_client's multiprocess files in one directory per server (the launcher,
:mod:`perf.api.cli`, creates it, sets ``PROMETHEUS_MULTIPROC_DIR`` and removes it at exit),
and a scrape on any worker reads them all (``MultiProcessCollector``): counters and
histograms are the whole server's, and a worker that died keeps counting in the sum (its
files stay), while its live gauges are dropped (:func:`reap_dead_workers`). Without a
directory (an app created in process) the registry is this process's alone.

What it measures, per request (the timing layer, :mod:`perf.api.timing`, calls
:meth:`ApiMetrics.record`):

=====================================  ============================================================
``http_requests_total``                responses by ``method``, ``route`` (the template, never the
                                       raw path: bounded labels), ``status`` and ``cache`` (X-Cache)
``http_request_duration_seconds``      latency histogram by ``method`` and ``route``, buckets from
                                       0.1 ms to 10 s (:data:`LATENCY_BUCKETS`)
``http_requests_in_flight``            requests being served (summed over live workers), published
                                       with the sampled metrics: at most a second old
=====================================  ============================================================

and, sampled (:mod:`perf.api.sampling`), the cache, pool, queue and services' availability.
Counting a request into prometheus_client directly costs three updates of a memory-mapped
float (the counter, the histogram's sum and its bucket; each takes a lock, checks the pid and
packs 16 bytes: ~3 µs for the counter and ~5.5 µs for the observation here, while a dict
increment is 0.2 µs). So a request is counted in plain dicts of this worker
(:meth:`ApiMetrics.record`), and the counts are **folded** into the metrics in one update per
label set: whenever the worker has no request left in flight (an idle or lightly loaded
server: every scrape then sees every answered request), at every :meth:`~ApiMetrics.publish`
(the sampler's second, and each scrape on this worker) and at shutdown. A scrape answered by
another worker that has been busy without a pause shows this one's counts at most a second
late, and a worker killed under load loses at most its last second of counts.
The in-flight count is a plain int per worker that the sampler publishes, and the label
children are looked up once and kept in a dict, since ``labels()`` costs more than an update.
``python -m perf.bench.metrics`` measures the whole layer.

>>> metrics = ApiMetrics()
>>> metrics.record("GET", "/products/{product_id}", 200, "hit-l1", 0.0004)
>>> metrics.summary()["count"]
1
"""

from __future__ import annotations

import glob
import os
import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from perf.compat.prometheus_client import observe_counts
from perf.measure.buckets import bucket_quantile

#: Upper bounds (seconds): ~1.5-2x apart from 0.1 ms (an L1 hit through the stack) to 10 s.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01,
                   0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted under their own name; any other (a client may send any token) is ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The ``route`` label of a request no route matched (a 404, a malformed request).
UNMATCHED = "unmatched"
#: The scope key the routers set to the matched route's template (:func:`set_route`).
ROUTE_KEY = "perf.route"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def set_route(scope: Any, template: str) -> None:
    """Label this request with its route ``template`` (``/products/{product_id}``): routers call it."""
    scope[ROUTE_KEY] = template


class ApiMetrics:
    """The API's Prometheus metrics: this worker's registry, and the server's when ``multiprocess_dir`` is set.

    ``multiprocess_dir`` must be the ``PROMETHEUS_MULTIPROC_DIR`` that was set before
    prometheus_client was first imported (the launcher does both); otherwise the
    values live in this process only and the constructor says so.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Counter("http_requests", "HTTP responses sent, by route template, status and X-Cache",
                                ["method", "route", "status", "cache"], registry=r)
        self.latency = Histogram("http_request_duration_seconds",
                                 "Time from the request reaching the app to its last body byte sent",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("http_requests_in_flight", "Requests being served", registry=r,
                               multiprocess_mode="livesum")
        #: Requests this worker is serving now (the timing layer keeps it; :meth:`publish` exports it).
        self.active = 0
        # counted since the last fold: responses per label set; per (method, route) one count per
        # bucket (LATENCY_BUCKETS, then +Inf) and the seconds' sum
        self._responses: dict[tuple[str, str, int, str], int] = {}
        self._latencies: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        self._counters: dict[tuple[str, str, int, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}
        self.server_registry = self.registry
        if multiprocess_dir is not None:
            own = os.path.join(multiprocess_dir, f"gauge_livesum_{os.getpid()}.db")
            if not os.path.exists(own):
                raise RuntimeError(
                    f"multiprocess_dir={multiprocess_dir!r} holds no file of this process: prometheus_client was "
                    "imported before PROMETHEUS_MULTIPROC_DIR was set to it; set the variable first "
                    "(python -m perf api does), or pass multiprocess_dir=None for one process' metrics")
            self.server_registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(self.server_registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]

    def record(self, method: str, route: str, status: int, cache: str, seconds: float) -> None:
        """Count one response of ``route`` (a template) and its ``seconds``; folded in when nothing is in flight."""
        method = method if method in METHODS else "other"
        key = (method, route, status, cache)
        self._responses[key] = self._responses.get(key, 0) + 1
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0])
        latency[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bound >= seconds, as observe()
        latency[1][0] += seconds
        if not self.active:
            self.fold()

    def fold(self) -> None:
        """Add the responses counted since the last fold to the metrics: one update per label set."""
        responses, latencies = self._responses, self._latencies
        if not responses:
            return
        self._responses, self._latencies = {}, {}
        for key, n in responses.items():
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self.requests.labels(key[0], key[1], str(key[2]), key[3])
            counter.inc(n)
        for pair, (counts, total) in latencies.items():
            histogram = self._histograms.get(pair)
            if histogram is None:
                histogram = self._histograms[pair] = self.latency.labels(*pair)
            observe_counts(histogram, counts, total[0])

    def publish(self) -> None:
        """Fold the counted responses in and export the in-flight count (every second, and on each scrape)."""
        self.fold()
        self.in_flight.set(self.active)

    def exposition(self) -> bytes:
        """The server's metrics in the Prometheus text format (every worker's, dead ones' counters included)."""
        self.publish()
        if self.multiprocess_dir is not None:
            reap_dead_workers(self.multiprocess_dir)
        return generate_latest(self.server_registry)

    def summary(self, *, server: bool = False) -> dict[str, Any]:
        """JSON-ready: responses, per status, per X-Cache and per route, and p50/p90/p99 in ms.

        ``server``: every worker's (the same numbers a scrape shows), else this worker's.
        Percentiles come from the histogram's buckets, as ``histogram_quantile`` would
        compute them: exact to the bucket.
        """
        self.fold()
        families = (self.server_registry if server else self.registry).collect()
        return summarize(families)

    def close(self) -> None:
        """Fold the last counts in and drop this worker's live gauges from the server's sum (it is shutting down)."""
        self.fold()
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def summarize(families: Iterable[Metric]) -> dict[str, Any]:
    """:meth:`ApiMetrics.summary` of collected metric ``families`` (one registry's, or a parsed scrape's)."""
    by_status: dict[str, int] = {}
    by_cache: dict[str, int] = {}
    by_route: dict[str, int] = {}
    buckets: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name == "http_requests_total":
                labels, n = sample.labels, int(sample.value)
                for table, key in ((by_status, labels["status"]), (by_cache, labels["cache"]),
                                   (by_route, f"{labels['method']} {labels['route']}")):
                    table[key] = table.get(key, 0) + n
            elif sample.name == "http_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    bounds = sorted(buckets)
    cumulative = [buckets[b] for b in bounds]
    count = sum(by_status.values())
    pct = {f"p{p}_ms": (round(bucket_quantile(bounds, cumulative, p / 100) * 1e3, 3) if count and bounds else None)
           for p in (50, 90, 99)}
    return {"count": count, "by_status": dict(sorted(by_status.items())), "by_cache": by_cache,
            "by_route": dict(sorted(by_route.items())), **pct}


def reap_dead_workers(path: str) -> list[int]:
    """Drop the live gauges of every worker in ``path`` whose process is gone; returns their pids.

    uvicorn's supervisor restarts a killed worker but tells nobody its pid: each scrape
    asks the kernel which writers still exist (a pid reused meanwhile keeps its gauges
    until that process ends too).
    """
    dead: list[int] = []
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        found = _LIVE_FILE.search(name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
            dead.append(pid)
        except PermissionError:  # alive, another user's
            continue
    return sorted(set(dead))
