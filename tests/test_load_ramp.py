"""Stress ramp and bottleneck sampling against a real server whose capacity is known."""

from __future__ import annotations

import pytest

from perf.load.analysis.bottleneck import ServerSampler, parse_metrics, time_breakdown
from perf.load.analysis.calibrate import Calibration, calibrate, flag_client_bound
from perf.load.analysis.recommend import measurements_from, recommend
from perf.load.demo_server import TestServer
from perf.load.models import ClosedModel
from perf.load.ramp import _confirm, rate_steps, stress
from perf.load.results import LoadResult
from perf.load.runner import run_load
from perf.load.scenarios import Endpoint, Scenario


async def test_stress_finds_the_knee_of_a_server_with_known_capacity() -> None:
    # /stall/4 blocks the server loop 4 ms a request: capacity is at most 250 req/s.
    with TestServer() as server:
        report = await stress(server.url, rates=[50, 100, 800, 1600], step_seconds=1.0,
                              scenario=Scenario.single("/stall/4"), slos=["p99<250ms"], timeout=5.0,
                              repeats=3, progress=False)
    steps = report.steps
    assert report.max_sustainable is not None and report.max_sustainable <= 250
    assert report.broke_at is not None and report.broke_at <= 800
    ramp = steps[steps["phase"] == "ramp"]
    # Stopped at the first break (100 req/s is 40% busy: it passes unless the machine hiccups).
    assert ramp["sustained"].iloc[:-1].all() and not ramp["sustained"].iloc[-1]
    if ramp["offered"].iloc[-1] == 800:
        assert ramp["p99_ms"].iloc[-1] > 5 * ramp["p99_ms"].iloc[0]
    # Bisection narrowed the search to within 10% (or ran out of refine steps trying) ...
    searched = steps[steps["phase"] != "repeat"]
    passing, failing = searched[searched["sustained"]]["offered"], searched[~searched["sustained"]]["offered"]
    refined = steps[steps["phase"] == "refine"]
    assert failing.min() <= passing.max() * 1.10 or len(refined) == 6
    # ... and the reported bracket is the confirmed rate up to the lowest rate that failed, searched or
    # repeated: a top rate that lost its repeats widens it again (CI #18: 231 failed them, 187.5 held).
    assert report.bracket is not None
    low, high = report.bracket
    lost = [rate for rate, reps in steps[steps["phase"] == "repeat"].groupby("offered") if reps["sustained"].sum() < 2]
    assert high == min([failing.min(), *lost])
    assert low == report.max_sustainable and 50 <= low < high <= 800
    assert len(report.repeats) == 3 and (report.repeats["offered"] == low).all()
    assert report.repeats["sustained"].sum() >= 2  # the majority of its repeats sustained it
    for rate, reps in steps[steps["phase"] == "repeat"].groupby("offered"):
        assert (reps["sustained"].sum() >= 2) == (rate == low)  # every other repeated rate was stepped down from
    for result in report.results:
        result.check_accounting()
    assert report.knee is not None and report.knee <= 250
    assert "max sustainable rate" in report.describe() and "repeated 3x" in report.describe()


class _ScriptedSteps:
    """The confirm phase's decisions alone: each rate passes or fails its repeats as scripted."""

    def __init__(self, script: dict[float, list[bool]]) -> None:
        self.script = script
        self.ran: list[float] = []

    async def run(self, rate: float, phase: str, *, record: bool = True) -> bool:
        self.ran.append(rate)
        return self.script[rate].pop(0)


async def test_a_top_rate_that_loses_its_repeats_is_stepped_down_from_and_tops_the_bracket() -> None:
    steps = _ScriptedSteps({231.2: [False, True, False], 187.5: [True, False, True], 100: [True] * 3})
    good, bad = await _confirm(steps, [50, 100, 187.5, 231.2], 231.2, 253.1,  # type: ignore[arg-type]
                               repeats=3, max_stepdowns=3)
    assert (good, bad) == (187.5, 231.2)
    assert steps.ran == [231.2] * 3 + [187.5] * 3  # a winner runs all its repeats: its spread is reported
    steps = _ScriptedSteps({231.2: [False, False], 187.5: [False, False], 100: [False, False]})
    good, bad = await _confirm(steps, [50, 100, 187.5, 231.2], 231.2, 253.1,  # type: ignore[arg-type]
                               repeats=3, max_stepdowns=2)
    assert (good, bad) == (None, 100)  # a lost majority stops after two runs; at most 2 step-downs
    assert steps.ran == [231.2, 231.2, 187.5, 187.5, 100, 100]


async def test_a_rate_is_sustainable_only_by_the_majority_of_at_least_three_repeats() -> None:
    with pytest.raises(ValueError, match="repeats must be >= 3"):
        await stress("http://127.0.0.1:1", rates=[10], repeats=1, progress=False)


def test_rate_steps() -> None:
    assert rate_steps(100, factor=2, max_rate=1000) == [100, 200, 400, 800]
    with pytest.raises(ValueError, match="factor must be > 1"):
        rate_steps(100, factor=1)


async def test_sampler_breakdown_and_calibration() -> None:
    with TestServer() as server:
        async with ServerSampler(pid=server.pid, metrics_url=server.url + "/metrics", interval=0.2) as sampler:
            scenario = Scenario([Endpoint("fast", "/", weight=9), Endpoint("db", "/delay/2", weight=1)])
            result = await run_load(server.url, model=ClosedModel(users=8, duration=1.0), scenario=scenario)
        calibration = await calibrate(server.url, duration=0.5)
    assert sampler.cpu.max() > 0.05  # the server was busy answering thousands of requests a second
    assert sampler.metric_delta("requests_total") >= result.completed
    breakdown = time_breakdown(result)
    assert breakdown.loc["db", "db_ms"] == pytest.approx(2.0)
    assert breakdown.loc["fast", "db_ms"] == 0.0
    assert 0 < breakdown.loc["db", "server_share"] <= 1
    assert calibration.ceiling > 200
    assert "client-bound" in (flag_client_bound(calibration.result, calibration) or "")  # type: ignore[arg-type]


def test_one_client_bound_rule_for_warning_and_recommendation() -> None:
    # Ceilings far from the run's throughput on either side: no machine load can flip these.
    result = LoadResult(duration=1.0, client_cpu=0.99, scheduled=1000)
    for i in range(1000):
        result.record("/", 0.001, 200, i / 1000)
    at_ceiling = Calibration("builtin", "http://x/", ceiling=1000.0, cpu_fraction=1.0)
    far_above = Calibration("builtin", "http://x/", ceiling=100_000.0, cpu_fraction=1.0)
    for calibration, bound in ((at_ceiling, True), (far_above, False)):
        warning = flag_client_bound(result, calibration)
        recs = recommend(measurements_from(result, calibration=calibration))
        assert (warning is not None) == bound == any(r.area == "client" for r in recs)
    assert "1,000 req/s" in recommend(measurements_from(result, calibration=at_ceiling))[0].evidence


def test_mix_breakdown_weights_each_endpoint_by_its_traffic() -> None:
    from perf.load.analysis.bottleneck import mix_breakdown

    # 60 fast list reads (1 ms, all in the server) and 5 slow writes (10 ms, 2 ms of it outside)
    result = LoadResult(duration=1.0, scheduled=65)
    for i in range(60):
        result.record("list", 0.001, 200, i / 65, server_timing="db;dur=0.5, app;dur=0.5, total;dur=1")
    for i in range(5):
        result.record("write", 0.010, 200, (60 + i) / 65, server_timing="db;dur=7, app;dur=1, total;dur=8")
    mix = mix_breakdown(result)
    assert mix["client_ms"] == pytest.approx((60 * 1 + 5 * 10) / 65, rel=0.01)
    assert mix["outside_server_ms"] == pytest.approx(5 * 2 / 65, rel=0.05)  # not the unweighted mean, 1 ms
    with pytest.raises(ValueError, match="no responses"):
        mix_breakdown(LoadResult())


def test_parse_metrics_prometheus_and_json() -> None:
    text = '# HELP x y\nhttp_requests_total{path="/a"} 12\npool_wait_seconds 0.5\nbad line\n'
    assert parse_metrics(text) == {'http_requests_total{path="/a"}': 12.0, "pool_wait_seconds": 0.5}
    assert parse_metrics('{"pool": {"waits": 3, "name": "x"}, "hit": 0.5}') == {"pool.waits": 3.0, "hit": 0.5}


async def test_compare_drivers_and_paths_interleave() -> None:
    from perf.load.analysis.calibrate import compare_drivers, compare_paths, driver_ratios

    with TestServer() as server:
        drivers = await compare_drivers(server.url, drivers=("builtin", "httpx"), rounds=2, seconds=0.5, users=8,
                                        server_pid=server.pid)
        paths = await compare_paths(server.url, {"fast": "/", "slow": "/delay/20"}, rounds=2, seconds=0.5, users=4)
    assert sorted(drivers["driver"].unique()) == ["builtin", "httpx"] and len(drivers) == 4
    assert driver_ratios(drivers, "builtin", "httpx") > 1.0
    # the server's own CPU, read from its process: some share of a core, a few µs to ms per request
    assert ((drivers["server_cpu"] > 0) & (drivers["server_cpu"] < 2.5)).all()
    assert ((drivers["server_us"] > 1) & (drivers["server_us"] < 10_000)).all()
    wide = paths.pivot(index="round", columns="path", values="rps")
    assert (wide["fast"] > 5 * wide["slow"]).all()  # 20 ms per request caps "slow" at 4 users / 20 ms = 200 req/s


async def test_profiled_server_shows_where_the_cpu_went() -> None:
    from perf.load.analysis.profiler import ProfiledServer, top_frames

    with ProfiledServer(["perf.load.demo_server", "--port", "{port}"]) as server:
        server.begin()
        result = await run_load(server.url, model=ClosedModel(users=4, duration=0.5),
                                scenario=Scenario.single("/stall/5"))
        profile = server.end()
    top = top_frames(profile, n=5)
    assert result.completed > 20
    # time.sleep inside the app's __call__ is the heaviest own time: the stall shows up by name.
    assert top["function"].iloc[0] == "sleep"
    assert top["share"].between(0, 1).all() and len(top) == 5
    with pytest.raises(ValueError, match="no root_frame"):
        top_frames({})
