"""Read a server's Prometheus ``/metrics`` around and during a load run, as a monitoring system would.

* :func:`parse_scrape` reads a scrape with prometheus_client's own text parser.
* :func:`server_percentiles`: per route, what the server counted between two scrapes and its
  p50/p99 from the histogram's bucket deltas (exact to the bucket, whose bounds come along).
* :func:`client_percentiles`: the generator's p50/p99 for the same routes, from the run's
  HDR histograms, measured from the scheduled send (what a user waited) and from the
  actual send (``sent_*``: without the generator's own queueing).
* :class:`MetricsRecorder`: scrapes every ``interval`` seconds while a load runs;
  :func:`scrape_series` turns the scrapes into per-interval requests/s, p50/p99 and in-flight.

>>> before = parse_scrape(httpx.get(url + "/metrics").text)
>>> result = await run_load(url, model=OpenModel(rate=200, duration=2), scenario=scenario)
>>> after = parse_scrape(httpx.get(url + "/metrics").text)
>>> server_percentiles(before, after)          # route -> count, p50_ms, p99_ms, p99 bucket
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from perf.aio import cancel_and_wait
from perf.load.results import LoadResult
from perf.measure.buckets import bucket_bounds, bucket_quantile
from perf.measure.latency import LatencyHistogram

HISTOGRAM = "http_request_duration_seconds"
REQUESTS = "http_requests_total"

#: ``{(sample name, frozenset of label pairs): value}``: one scrape, every sample.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_scrape(text: str) -> Samples:
    """Every sample of a Prometheus text scrape (prometheus_client's parser: a bad line raises)."""
    return {(s.name, frozenset(s.labels.items())): float(s.value)
            for family in text_string_to_metric_families(text) for s in family.samples}


def route_buckets(samples: Samples, *, name: str = HISTOGRAM) -> dict[str, dict[float, float]]:
    """``{"GET /products": {le: cumulative count}}``: the histogram of every route in a scrape."""
    routes: dict[str, dict[float, float]] = {}
    for (sample, labels), value in samples.items():
        if sample != name + "_bucket":
            continue
        tags = dict(labels)
        key = f"{tags.get('method', '')} {tags.get('route', '')}".strip()
        le = float(tags["le"])
        table = routes.setdefault(key, {})
        table[le] = table.get(le, 0.0) + value
    return routes


def server_percentiles(before: Samples, after: Samples, *, routes: list[str] | None = None,
                       name: str = HISTOGRAM) -> pd.DataFrame:
    """Per route (``"GET /products/{product_id}"``): requests between the scrapes and the server's p50/p99.

    Columns ``count``, ``p50_ms``, ``p99_ms`` (interpolated inside the bucket, as
    ``histogram_quantile``), ``p99_low_ms``/``p99_high_ms`` (that bucket's bounds: the estimate's
    error bar). ``routes`` keeps only those (default: every route with requests in between).
    """
    old, new = route_buckets(before, name=name), route_buckets(after, name=name)
    rows = {}
    for route, table in new.items():
        if routes is not None and route not in routes:
            continue
        bounds = sorted(table)
        delta = [table[b] - old.get(route, {}).get(b, 0.0) for b in bounds]
        if delta[-1] <= 0:
            continue
        p50, p99 = bucket_quantile(bounds, delta, 0.5), bucket_quantile(bounds, delta, 0.99)
        low, high = bucket_bounds(bounds, p99)
        rows[route] = {"count": int(delta[-1]), "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3,
                       "p99_low_ms": low * 1e3, "p99_high_ms": high * 1e3}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["count", "p50_ms", "p99_ms", "p99_low_ms",
                                                                  "p99_high_ms"])


def client_percentiles(result: LoadResult, routes: Mapping[str, str]) -> pd.DataFrame:
    """Per route, the generator's count and p50/p99 (ms); ``routes`` maps endpoint name -> route.

    ``p50_ms``/``p99_ms`` from the scheduled send (an open model's user waited that long),
    ``sent_p50_ms``/``sent_p99_ms`` from the actual send.
    """
    merged: dict[str, tuple[LatencyHistogram, LatencyHistogram]] = {}
    for endpoint, hist in result.histograms.items():
        if endpoint not in routes:
            continue
        scheduled, sent = merged.setdefault(routes[endpoint], (LatencyHistogram(), LatencyHistogram()))
        scheduled.merge(hist)
        if endpoint in result.naive:
            sent.merge(result.naive[endpoint])
    rows = {}
    for route, (scheduled, sent) in merged.items():
        if scheduled.count == 0:
            continue
        rows[route] = {"count": scheduled.count, "p50_ms": scheduled.percentile(50) * 1e3,
                       "p99_ms": scheduled.percentile(99) * 1e3,
                       "sent_p50_ms": sent.percentile(50) * 1e3 if sent.count else float("nan"),
                       "sent_p99_ms": sent.percentile(99) * 1e3 if sent.count else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["count", "p50_ms", "p99_ms", "sent_p50_ms", "sent_p99_ms"])


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    """One scrape of ``url`` (raises on a non-2xx answer: a 401 means a token is needed)."""
    response = await client.get(url)
    response.raise_for_status()
    return parse_scrape(response.text)


@dataclass(frozen=True)
class Scrape:
    """One scrape: seconds since the recorder started, and its samples."""

    t: float
    samples: Samples


class MetricsRecorder:
    """``async with MetricsRecorder(url + "/metrics") as rec: await run_load(...)``; then ``rec.scrapes``.

    Scrapes at the start, every ``interval`` seconds, and once more at the end.
    ``headers``: e.g. the bearer token, for a server that is not on loopback.
    """

    def __init__(self, url: str, *, interval: float = 0.25, headers: Mapping[str, str] | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval={interval!r} must be > 0 seconds")
        self.url = url
        self.interval = interval
        self.headers = dict(headers or {})
        self.scrapes: list[Scrape] = []
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._start = 0.0

    async def _take(self) -> None:
        assert self._client is not None
        samples = await scrape(self._client, self.url)
        self.scrapes.append(Scrape(time.monotonic() - self._start, samples))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._take()

    async def __aenter__(self) -> MetricsRecorder:
        self._client = httpx.AsyncClient(timeout=5.0, headers=self.headers)
        self._start = time.monotonic()
        await self._take()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await cancel_and_wait(self._task)
        if self._client is not None:
            try:
                await self._take()
            finally:
                await self._client.aclose()


def scrape_series(scrapes: list[Scrape], *, routes: list[str] | None = None) -> pd.DataFrame:
    """Per interval between consecutive scrapes: ``t`` (its end, s), requests/s the server counted,
    its p50/p99 (ms, from the buckets) over ``routes`` (default all), and requests in flight."""
    rows = []
    for prev, cur in zip(scrapes, scrapes[1:], strict=False):
        merged = _merged_delta(prev.samples, cur.samples, routes)
        count = int(merged.get(math.inf, 0.0))
        bounds = sorted(merged)
        cumulative = [merged[b] for b in bounds]
        rows.append({"t": cur.t, "rps": count / (cur.t - prev.t),
                     "p50_ms": bucket_quantile(bounds, cumulative, 0.5) * 1e3 if count else float("nan"),
                     "p99_ms": bucket_quantile(bounds, cumulative, 0.99) * 1e3 if count else float("nan"),
                     "in_flight": sum(v for (n, _), v in cur.samples.items() if n == "http_requests_in_flight")})
    return pd.DataFrame(rows, columns=["t", "rps", "p50_ms", "p99_ms", "in_flight"])


def _merged_delta(before: Samples, after: Samples, routes: list[str] | None) -> dict[float, float]:
    old, new = route_buckets(before), route_buckets(after)
    merged: dict[float, float] = {}
    for route, table in new.items():
        if routes is not None and route not in routes:
            continue
        for le, value in table.items():
            merged[le] = merged.get(le, 0.0) + value - old.get(route, {}).get(le, 0.0)
    return merged
