"""/metrics: Prometheus text for the whole server (two workers, one scrape), bounded labels, access."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from perf.api.app import create_app
from perf.api.metrics import LATENCY_BUCKETS, ApiMetrics
from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.lab.workers import worker_counts
from perf.measure.buckets import bucket_bounds, bucket_quantile
from perf.measure.inprocess import InProcessClient
from tests._api_helpers import drop_namespace, unique_name

ITEM = "/products/{product_id}"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _route_total(text: str, route: str, name: str = "http_requests_total") -> float:
    return sum(value for (sample, labels), value in _samples(text).items()
               if sample == name and ("route", route) in labels and ("method", "GET") in labels)


def _route_buckets(text: str, route: str) -> tuple[list[float], list[float]]:
    buckets: dict[float, float] = {}
    for (sample, labels), value in _samples(text).items():
        tags = dict(labels)
        if sample == "http_request_duration_seconds_bucket" and tags.get("route") == route:
            buckets[float(tags["le"])] = buckets.get(float(tags["le"]), 0.0) + value
    bounds = sorted(buckets)
    return bounds, [buckets[b] for b in bounds]


@pytest.fixture(scope="module")
def two_workers(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_metrics")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=300)
    try:
        with ApiServer(settings, workers=2) as server:
            worker_counts(server.url, expected=2)  # both workers up before counting
            yield server
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def _worker_views(url: str) -> dict[int, int]:
    """Each live worker's own count of ``GET ITEM`` (its /metrics.json), asked on fresh connections."""
    views: dict[int, int] = {}
    deadline = time.monotonic() + 30  # a worker restarted by an earlier test may still be starting
    while len(views) < 2:
        assert time.monotonic() < deadline, f"only workers {sorted(views)} answered /metrics.json"
        body = httpx.get(url + "/metrics.json", headers={"connection": "close"}).json()
        views[body["pid"]] = body["requests"]["by_route"].get(f"GET {ITEM}", 0)
    return views


def test_one_scrape_counts_every_request_of_both_workers(two_workers: ApiServer):
    # deltas over this test: the module's server may have served (and lost a killed worker) before it
    views_before = _worker_views(two_workers.url)
    before = httpx.get(two_workers.url + "/metrics").text
    n, raw = 400, []
    with httpx.Client(base_url=two_workers.url, headers={"connection": "close"}) as client:
        for i in range(n):  # a new connection per request: the kernel spreads them over the workers
            response = client.get(f"/products/{i % 300 + 1}")
            assert response.status_code == 200
            raw.append(float(response.headers["server-timing"].rsplit("total;dur=", 1)[1]) / 1e3)
    per_worker = worker_counts(two_workers.url, expected=2)
    assert len(per_worker) == 2  # two processes answered
    scrape = httpx.get(two_workers.url + "/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert _route_total(text, ITEM) - _route_total(before, ITEM) == n
    assert _route_total(text, ITEM, "http_request_duration_seconds_count") - \
        _route_total(before, ITEM, "http_request_duration_seconds_count") == n
    # each worker served some of them (its own view in /metrics.json), and the scrape is their sum
    views = _worker_views(two_workers.url)
    served = {pid: views[pid] - views_before.get(pid, 0) for pid in views}
    assert len(served) == 2 and all(v > 0 for v in served.values()), (views_before, views)
    assert sum(served.values()) == _route_total(text, ITEM) - _route_total(before, ITEM)

    # p99 from the buckets (delta over this run) vs p99 of the server's own per-request times
    # (Server-Timing total, to the response's start; the histogram runs to its last byte, a few µs more)
    bounds, after = _route_buckets(text, ITEM)
    _, earlier = _route_buckets(before, ITEM)
    earlier = earlier or [0.0] * len(after)
    delta = [a - b for a, b in zip(after, earlier, strict=True)]
    estimate = bucket_quantile(bounds, delta, 0.99)
    exact = float(np.percentile(raw, 99))
    index = {b: i for i, b in enumerate([*LATENCY_BUCKETS, math.inf])}
    assert abs(index[bucket_bounds(bounds, estimate)[1]] - index[bucket_bounds(bounds, exact)[1]]) <= 1, \
        (estimate, exact)


def test_every_line_of_a_scrape_parses_back(two_workers: ApiServer):
    httpx.get(two_workers.url + "/products/1")
    text = httpx.get(two_workers.url + "/metrics").text
    families = list(text_string_to_metric_families(text))
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert sum(len(f.samples) for f in families) == len(lines)
    names = {f.name for f in families}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_flight", "perf_cache_hits",
            "perf_db_pool_size", "perf_db_pool_in_use", "perf_db_pool_wait_seconds", "perf_queue_depth",
            "perf_queue_tasks", "perf_service_up"} <= names
    for family in families:
        assert family.documentation, family.name  # every family has its HELP line
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    up = {dict(labels)["service"]: v for (name, labels), v in _samples(text).items() if name == "perf_service_up"}
    assert up == {"postgres": 1.0, "redis": 1.0}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt install prometheus); "
                    "test_every_line_of_a_scrape_parses_back checks the format with prometheus_client's parser")
def test_promtool_finds_nothing_to_say_about_a_scrape(two_workers: ApiServer):
    text = httpx.get(two_workers.url + "/metrics").text
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_counts_survive_a_killed_worker_and_its_gauges_go(two_workers: ApiServer):
    for i in range(20):
        httpx.get(f"{two_workers.url}/products/{i + 1}", headers={"connection": "close"})
    before = _route_total(httpx.get(two_workers.url + "/metrics").text, ITEM)
    pids = worker_counts(two_workers.url, expected=2)
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # uvicorn's supervisor starts a new worker
        live = worker_counts(two_workers.url, expected=2, polls=20)
        if victim not in live and len(live) == 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no new worker replaced pid {victim}")
    text = httpx.get(two_workers.url + "/metrics").text
    assert _route_total(text, ITEM) == before  # the dead worker's counts are still in the sum
    assert not [f for f in os.listdir(_metrics_dir(two_workers)) if f.startswith("gauge_live") and
                f.endswith(f"_{victim}.db")]  # its live gauges (in flight, pool) were dropped


def _metrics_dir(server: ApiServer) -> str:
    """The directory the launcher handed its workers (a worker's environment has it from its start)."""
    for child in psutil.Process(server.pid).children(recursive=True):
        found = child.environ().get("PROMETHEUS_MULTIPROC_DIR")
        if found:
            return found
    raise AssertionError(f"no worker of pid {server.pid} has PROMETHEUS_MULTIPROC_DIR")


async def test_routes_are_labelled_by_template_and_internals_need_loopback_or_token(database_url: str,
                                                                                   redis_url: str):
    schema = unique_name("t_metrics_inproc")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=20,
                           bare_routes=True)
    app = create_app(settings)
    token = {"authorization": f"Bearer {settings.api_token}"}
    try:
        async with InProcessClient(app, client=("203.0.113.7", 40000)) as remote:
            for path in ["/products/1", "/products/2", "/products/2", "/nope/1", "/nope/2", "/bare/products/3",
                         "/products/xyz"]:
                await remote.request("GET", path)
            await remote.request("BREW", "/products/1")
            status, headers, body = await remote.request("GET", "/metrics")
            assert status == 401 and b"Bearer" in body and "www-authenticate" in headers
            assert (await remote.request("GET", "/metrics.json"))[0] == 401
            status, _, body = await remote.request("GET", "/health")
            assert status == 200 and body == b'{"status":"ok"}'  # no pid, no timings
            status, _, body = await remote.request("GET", "/health", headers=token)
            assert status == 200 and b'"pid"' in body
            status, headers, body = await remote.request("GET", "/metrics", headers=token)
            assert status == 200 and headers["content-type"].startswith("text/plain")
        samples = _samples(body.decode())
        routes = {dict(labels).get("route") for (name, labels), _ in samples.items() if name == "http_requests_total"}
        assert routes == {"/products/{product_id}", "/bare/products/{product_id}", "unmatched", "/health",
                          "/metrics", "/metrics.json"}
        methods = {dict(labels)["method"] for (name, labels), _ in samples.items() if name == "http_requests_total"}
        assert methods == {"GET", "other"}  # BREW is counted, under a bounded label
        hits = {dict(labels)["level"]: v for (name, labels), v in samples.items() if name == "perf_cache_hits_total"}
        assert hits.get("l1", 0) >= 1  # the second GET /products/2
    finally:
        await asyncio.to_thread(drop_namespace, database_url, schema, redis_url, schema)


def test_bucket_quantile_interpolates_like_histogram_quantile():
    bounds = [0.001, 0.002, 0.004, math.inf]
    assert bucket_quantile(bounds, [0, 100, 100, 100], 0.5) == pytest.approx(0.0015)
    assert bucket_quantile(bounds, [0, 0, 0, 10], 0.99) == 0.004  # in +Inf: the highest finite bound
    assert math.isnan(bucket_quantile(bounds, [0, 0, 0, 0], 0.5))
    with pytest.raises(ValueError, match="q=1.5"):
        bucket_quantile(bounds, [1, 1, 1, 1], 1.5)


def test_summary_reads_the_same_registry_as_the_exposition():
    metrics = ApiMetrics()
    for seconds in (0.0002, 0.0004, 0.003):
        metrics.record("GET", ITEM, 200, "miss", seconds)
    metrics.record("PATCH", ITEM, 404, "bypass", 0.001)
    summary = metrics.summary(server=True)
    assert summary["count"] == 4 and summary["by_status"] == {"200": 3, "404": 1}
    assert summary["by_route"] == {f"GET {ITEM}": 3, f"PATCH {ITEM}": 1}
    assert _route_total(metrics.exposition().decode(), ITEM) == 3


def _registry_count(metrics: ApiMetrics) -> float:
    return sum(s.value for family in metrics.registry.collect() for s in family.samples
               if s.name == "http_requests_total")


def test_a_busy_worker_folds_its_counts_in_when_it_publishes_and_an_idle_one_at_once():
    metrics = ApiMetrics()
    metrics.active = 2  # requests in flight: counting goes to plain dicts
    for seconds in (0.0002, 0.0004, 0.003, 20.0):
        metrics.record("GET", ITEM, 200, "hit-l1", seconds)
    assert _registry_count(metrics) == 0
    metrics.publish()  # the sampler's second (and every scrape on this worker)
    assert _registry_count(metrics) == 4
    text = metrics.exposition().decode()
    buckets = {float(s.labels["le"]): s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "http_request_duration_seconds_bucket"}
    assert (buckets[0.00025], buckets[0.0005], buckets[0.003], buckets[10.0], buckets[math.inf]) == (1, 2, 3, 3, 4)
    metrics.active = 0
    metrics.record("BREW", ITEM, 418, "bypass", 0.001)  # nothing in flight: folded at once
    assert _registry_count(metrics) == 5 and metrics.summary()["by_route"] == {f"GET {ITEM}": 4, f"other {ITEM}": 1}
