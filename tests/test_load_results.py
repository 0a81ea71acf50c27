"""LoadResult: recording, JSON round trip, merging across processes, Server-Timing parsing."""

from __future__ import annotations

import json
import random

import pytest

from perf.load.demo_server import TestServer
from perf.load.models import ClosedModel, OpenModel
from perf.load.results import BatchRecorder, LoadResult, merge_results, parse_server_timing
from perf.load.runner import run_load
from perf.load.scale import run_event_loop, run_processes
from perf.load.scenarios import Endpoint, Scenario
from perf.measure.latency import LatencyHistogram


def _result(latencies: list[float], status: int = 200) -> LoadResult:
    result = LoadResult(driver="test", model="synthetic", duration=2.0)
    for i, latency in enumerate(latencies):
        result.record("ep", latency, status, i / len(latencies) * 2, server_timing="db;dur=1, app;dur=2")
    return result


def test_merged_percentiles_come_from_the_union_not_the_average() -> None:
    rng = random.Random(1)
    fast = [rng.uniform(0.001, 0.002) for _ in range(9000)]
    slow = [rng.uniform(0.100, 0.200) for _ in range(1000)]
    a, b = _result(fast), _result(slow)
    merged = merge_results([a, b])
    union = LatencyHistogram.from_samples(fast + slow)
    assert merged.overall().percentile(99) == pytest.approx(union.percentile(99), rel=0.01)
    averaged = (a.overall().percentile(99) + b.overall().percentile(99)) / 2
    assert merged.overall().percentile(99) > 1.5 * averaged or merged.overall().percentile(95) > 10 * averaged
    assert merged.completed == 10_000 and merged.processes == 2
    assert merged.server_timing["ep"]["db"] == [10_000.0, 10_000]


def test_json_round_trip_keeps_everything() -> None:
    result = _result([0.001, 0.002, 0.5], status=500)
    result.record_error("ep", "reset", 1.2)
    result.record_given_up("ep", 1.0, 1.5, dropped=False)
    result.record_given_up("ep", 2.0, 1.9, dropped=True)
    result.late, result.offered_rate, result.scheduled = 3, 100.0, 6
    back = LoadResult.from_dict(result.to_dict())
    assert back.overall().percentiles() == result.overall().percentiles()
    assert back.status_counts == {500: 3}
    assert back.errors == {"ep: reset": 1}
    assert back.series == result.series
    assert (back.late, back.timed_out, back.dropped, back.offered_rate) == (3, 1, 1, 100.0)
    assert back.scheduled == back.accounted == 6 and back.given_up == {"ep": 2}
    assert back.summary().loc["ep", "censored"] == 2
    back.check_accounting()
    assert back.error_rate == 1.0
    summary = result.to_dict()["summary"]
    assert (summary["completed"], summary["failed"], summary["timed_out"], summary["dropped"]) == (0, 4, 1, 1)


def test_body_bytes_survive_json_and_merge() -> None:
    result = LoadResult(driver="test", model="synthetic", duration=1.0, scheduled=2)
    result.record("ep", 0.001, 200, 0.1, nbytes=300)
    result.record("ep", 0.001, 200, 0.2, nbytes=100)
    back = LoadResult.from_dict(result.to_dict())
    assert back.bytes_per_response() == 200.0
    assert merge_results([back, result]).body_bytes == {"ep": 800}


def test_timeseries_and_summary() -> None:
    result = _result([0.010] * 100)
    frame = result.timeseries()
    assert list(frame["second"]) == [0, 1] and frame["rps"].sum() == 100
    assert result.summary().loc["ep", "p50_ms"] == pytest.approx(10.0, rel=0.01)
    assert result.throughput == pytest.approx(50.0)


def test_merge_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge_results([])


@pytest.mark.parametrize("header, expected", [
    ("db;dur=1.2, app;dur=3", {"db": 1.2, "app": 3.0}),
    ('cache;desc="redis";dur=0.5, total;dur=9, miss', {"cache": 0.5, "total": 9.0}),
    ("db;dur=1, db;dur=2", {"db": 3.0}),
    ("garbage", {}),
])
def test_parse_server_timing(header: str, expected: dict[str, float]) -> None:
    assert parse_server_timing(header) == expected


def test_generator_processes_merge_their_histograms() -> None:
    with TestServer() as server:
        result = run_processes(server.url, model=ClosedModel(users=4, duration=5, max_requests=200), processes=2)
    assert result.processes == 2
    assert result.completed == result.scheduled == 200  # each process sent its share of max_requests
    assert result.overall().count == 200
    result.check_accounting()
    assert "× 2 processes" in result.model


def test_accounting_holds_for_every_result_shape() -> None:
    # Open model against a server that answers some requests with 503, some too slowly,
    # and more than its connections can carry: every bucket gets requests.
    scenario = Scenario([Endpoint("ok", "/", weight=6), Endpoint("broken", "/status/503", weight=2),
                         Endpoint("slow", "/delay/400", weight=2)])
    with TestServer() as server:
        opened = run_processes(server.url, model=OpenModel(rate=200, duration=1.0, connections=2, max_backlog=5),
                               scenario=scenario, processes=2, timeout=0.2)
        closed = run_event_loop(run_load(server.url, model=ClosedModel(users=4, duration=0.5), scenario=scenario,
                                         timeout=0.2))
    assert opened.scheduled == 200 and opened.processes == 2
    assert opened.completed and opened.failed and opened.timed_out and opened.dropped
    assert closed.completed and closed.failed and closed.timed_out and not closed.dropped
    for result in (opened, closed):
        result.check_accounting()
        back = LoadResult.from_dict(json.loads(result.to_json()))
        back.check_accounting()
        summary = result.to_dict()["summary"]
        assert summary["scheduled"] == sum(summary[k] for k in ("completed", "failed", "timed_out", "dropped"))
        assert back.overall().count == result.overall().count
        # Give-ups are censored samples in the histogram: counted, and their error rate is real.
        assert result.overall().count == result.responses + result.censored
        assert result.error_rate == pytest.approx((result.failed + result.censored) / result.scheduled)


def test_batch_recorder_fills_the_same_result_as_record() -> None:
    direct, batched = LoadResult(), LoadResult()
    recorder = BatchRecorder(batched, max_pending=7)  # forces flushes mid-way as well
    for i in range(500):
        args = ("/a" if i % 3 else "/b", 0.001 + (i % 50) * 1e-5, 500 if i % 97 == 0 else 200, i / 100)
        direct.record(*args, naive=0.0005, server_timing="db;dur=1.5, app;dur=0.25")
        recorder.record(*args, naive=0.0005, server_timing="db;dur=1.5, app;dur=0.25")
    recorder.flush()
    assert batched.status_counts == direct.status_counts and batched.series == direct.series
    assert batched.server_timing == direct.server_timing
    for table in ("histograms", "naive", "series_hist"):
        mine, theirs = getattr(batched, table), getattr(direct, table)
        assert mine.keys() == theirs.keys()
        for key in mine:
            levels = (10.0, 50.0, 90.0, 99.0, 100.0)
            assert mine[key].percentiles(levels) == theirs[key].percentiles(levels), (table, key)
