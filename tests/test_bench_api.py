"""perf.bench.api drives its load through perf.load: the figures it prints come from a LoadResult."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from perf.bench.api import measure_load, scenario
from perf.load.demo_server import TestServer
from perf.load.drivers import DriverUnavailable, wrk_available
from perf.load.scenarios import Scenario


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


def test_scenario_draws_every_id_in_range() -> None:
    rng = random.Random(0)
    targets = {scenario("/products/", 5).pick(rng).target for _ in range(200)}
    assert targets == {f"/products/{i}" for i in range(1, 6)}
    assert scenario("/hello").pick(rng).target == "/hello"


def test_measure_load_reports_rate_percentiles_and_errors(server: TestServer) -> None:
    figures = measure_load(server.url, scenario("/delay/5"), duration=1.0, connections=4)
    assert figures["rps"] > 0
    assert 5.0 <= figures["p50_ms"] <= figures["p99_ms"]
    assert figures["errors"] == 0
    failing = measure_load(server.url, scenario("/status/404"), duration=0.5, connections=2)
    assert failing["errors"] > 0 and failing["rps"] > 0


def test_wrk_sends_one_path_and_reports_the_same_figures(server: TestServer) -> None:
    assert scenario("/products/", 5, driver="wrk") == "/products/1" and scenario("/hello", driver="wrk") == "/hello"
    if wrk_available() is not None:  # wrk is not on PATH: the bench says so through run_wrk's error
        with pytest.raises(DriverUnavailable, match="not on PATH"):
            measure_load(server.url, "/delay/5", duration=1.0, connections=4, driver="wrk")
        return
    figures = measure_load(server.url, "/delay/5", duration=1.0, connections=4, driver="wrk")
    assert figures["rps"] > 0 and 5.0 <= figures["p50_ms"] <= figures["p99_ms"] and figures["errors"] == 0
    assert measure_load(server.url, "/status/404", duration=1.0, connections=2, driver="wrk")["errors"] > 0
    with pytest.raises(TypeError, match="wrk sends one path"):
        measure_load(server.url, Scenario.single("/"), duration=1.0, connections=2, driver="wrk")
