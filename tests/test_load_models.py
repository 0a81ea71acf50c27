"""Load models against a real uvicorn server with controlled delays and stalls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perf.load.demo_server import TestServer
from perf.load.drivers import DriverUnavailable, HttpxDriver, run_wrk, wrk_available
from perf.load.models import ClosedModel, OpenModel
from perf.load.runner import run_load
from perf.load.scenarios import Endpoint, Scenario
from perf.services.process import free_port


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


async def test_percentiles_match_known_delays(server: TestServer) -> None:
    scenario = Scenario([Endpoint("fast", "/delay/5", weight=9), Endpoint("slow", "/delay/50", weight=1)])
    result = await run_load(server.url, model=ClosedModel(users=8, duration=1.5), scenario=scenario)
    fast, slow = result.histograms["fast"], result.histograms["slow"]
    assert 0.005 <= fast.percentile(50) < 0.025
    assert 0.050 <= slow.percentile(50) < 0.090
    assert 0.03 < slow.count / (fast.count + slow.count) < 0.2
    overall = result.overall()
    assert overall.percentile(50) < 0.025 and overall.percentile(99.5) >= 0.050
    assert result.status_counts == {200: fast.count + slow.count}
    assert result.error_rate == 0.0
    # Server-Timing travelled with every response and was split by part.
    assert result.server_breakdown().loc["slow", "db"] == pytest.approx(50.0)


async def test_open_model_corrects_coordinated_omission() -> None:
    # The 60th request blocks the server's event loop for 1 s, once.
    with TestServer(stall_after=60, stall_ms=1000) as stalling:
        result = await run_load(stalling.url, model=OpenModel(rate=100, duration=3, connections=1))
    corrected, naive = result.overall(), result.overall(naive=True)
    assert corrected.count == naive.count == 300
    # Measured from the schedule, the ~100 requests due during the stall all waited.
    assert corrected.percentile(99) >= 0.5
    assert corrected.percentile(90) >= 0.1
    # Measured from the actual send, only the one stalled request shows it.
    assert naive.percentile(99) < 0.2
    assert naive.percentiles()["max"] >= 0.9
    assert result.late >= 50


def test_open_model_never_sends_before_the_schedule(server: TestServer) -> None:
    # Latency from the schedule is never shorter than the request itself: a timer that
    # fires early (uvloop's have 1 ms granularity; the CLI runs on uvloop) must not send
    # ahead of time.
    import uvloop  # a pinned requirement
    scenario = Scenario([Endpoint("delay", "/delay/3")])
    result = uvloop.run(run_load(server.url, model=OpenModel(rate=200, duration=1.5, connections=8),
                                 scenario=scenario))
    corrected, naive = result.overall(), result.overall(naive=True)
    assert corrected.count == naive.count >= 250
    # Each request's scheduled-time latency includes its send-time latency, so no
    # corrected figure can undercut the naive one (HDR buckets: 0.1% precision).
    assert corrected.percentiles()["min"] >= naive.percentiles()["min"] * 0.999
    assert corrected.percentile(50) >= naive.percentile(50) * 0.999


async def test_closed_model_hides_the_stall() -> None:
    with TestServer(stall_after=60, stall_ms=1000) as stalling:
        result = await run_load(stalling.url, model=ClosedModel(users=1, duration=2.5))
    hist = result.overall()
    assert hist.percentiles()["max"] >= 0.9
    assert hist.percentile(99) < 0.2  # one slow sample among thousands: the p99 never sees it


async def test_status_codes_and_server_errors(server: TestServer) -> None:
    scenario = Scenario([Endpoint("ok", "/", weight=1), Endpoint("broken", "/status/503", weight=1)])
    result = await run_load(server.url, model=ClosedModel(users=4, duration=5, max_requests=200),
                            scenario=scenario)
    assert result.responses == result.scheduled == 200
    assert result.completed + result.failed == 200 and result.failed == result.status_counts[503]
    assert set(result.status_counts) == {200, 503}
    assert 0.3 < result.error_rate < 0.7
    assert result.timeseries()["errors"].sum() == result.status_counts[503]


async def test_refused_connections_are_errors_not_exceptions() -> None:
    result = await run_load(f"http://127.0.0.1:{free_port()}", model=ClosedModel(users=2, duration=5, max_requests=10))
    assert result.completed == 0
    assert sum(result.errors.values()) == 10 == result.failed == result.scheduled
    assert all(key.endswith("connect") for key in result.errors)
    assert result.error_rate == 1.0


async def test_timeouts_are_counted(server: TestServer) -> None:
    result = await run_load(server.url, model=ClosedModel(users=2, duration=5, max_requests=4),
                            scenario=Scenario.single("/delay/1000"), timeout=0.1)
    assert result.timed_out == result.scheduled == 4 and not result.errors
    # A timed-out request enters the histogram at the time it waited (a censored sample).
    assert result.overall().count == 4 and result.overall().percentiles()["min"] >= 0.09
    assert result.censored_above == 0.0 and result.error_rate == 1.0


async def test_open_model_drops_past_the_backlog(server: TestServer) -> None:
    model = OpenModel(rate=400, duration=1, connections=1, max_backlog=5)
    result = await run_load(server.url, model=model, scenario=Scenario.single("/delay/20"))
    assert result.dropped > 100
    assert result.completed + result.dropped == result.scheduled == 400


async def test_httpx_driver_gives_the_same_result_format(server: TestServer) -> None:
    async with HttpxDriver(server.url) as driver:
        result = await run_load(server.url, model=ClosedModel(users=4, duration=5, max_requests=40),
                                scenario=Scenario.single("/delay/1", name="d"), driver=driver)
    assert result.driver == "httpx"
    assert result.histograms["d"].count == 40
    assert result.server_timing["d"]["db"][1] == 40


async def test_wrk_driver_runs_or_says_how_to_install(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    if wrk_available() is None:
        result = await run_wrk(server.url + "/", connections=4, duration=1)
        assert result.driver == "wrk" and result.completed > 100
        assert result.overall().count == pytest.approx(result.completed, rel=0.05)
        # wrk's own CPU, from the kernel's account of the finished child: busy for a second, not idle
        assert 0.01 < result.client_cpu < 2 * result.duration
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DriverUnavailable, match="not on PATH"):
        await run_wrk(server.url + "/", connections=4, duration=1)


@pytest.mark.parametrize("kwargs, message", [
    ({"users": 0}, "users must be >= 1"),
    ({"duration": -1}, "duration must be in"),
    ({"think_time": -0.1}, "think_time must be >= 0"),
])
def test_closed_model_validates(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClosedModel(**kwargs)  # type: ignore[arg-type]


def test_open_model_validates_and_schedules() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        OpenModel(rate=0)
    with pytest.raises(ValueError, match="connections must be >= 1"):
        OpenModel(connections=0)
    model = OpenModel(steps=[(10, 1), (20, 1)])
    offsets = list(model.schedule())
    assert len(offsets) == model.total_requests == 30
    assert offsets[10] == 1.0 and offsets[11] == pytest.approx(1.05)
    assert [m.rate for m in OpenModel(rate=90).split(3)] == [30, 30, 30]


def test_builtin_driver_refuses_https() -> None:
    with pytest.raises(ValueError, match="plain HTTP only"):
        from perf.load.drivers import create_driver
        create_driver("builtin", "https://127.0.0.1:1")
