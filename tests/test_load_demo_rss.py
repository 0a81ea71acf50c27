"""perf.load.demo_rss: the API workers' RSS sampled by pid under real load (PostgreSQL, Redis, uvicorn)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings, new_token
from perf.load.demo_rss import RssRun, rss_under_load
from perf.load.product import product_scenario
from perf.load.results import LoadResult
from tests._api_helpers import drop_namespace, unique_name


async def test_two_workers_sampled_by_pid_under_the_product_scenario(database_url: str, redis_url: str) -> None:
    schema = unique_name("t_rss")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=200,
                           api_token=new_token(), mode=ApiMode.parse("all"))
    try:
        with ApiServer(settings, workers=2) as server:
            run = await rss_under_load(server, scenario=product_scenario(products=200, categories=20,
                                                                         token=server.token),
                                       duration=3.0, users=4, interval=0.25)
            supervisor = server.pid
    finally:
        await asyncio.to_thread(drop_namespace, database_url, schema, redis_url, schema)
    assert run.result.error_rate == 0 and run.requests > 100
    roles = run.samples.groupby("pid")["role"].first()
    assert roles[supervisor] == "supervisor" and (roles == "worker").sum() == 2  # the children serve
    assert len(run.total) >= 10 and (run.total["workers"] == 2).all()
    # the workers' RSS is real: tens of MiB each (an interpreter with the app loaded)
    assert 2 * 20 < run.start_mib <= run.peak_mib and run.end_mib <= run.peak_mib
    assert run.total["requests"].is_monotonic_increasing and run.total["requests"].iloc[-1] == run.requests
    assert np.isfinite(run.slope_mib_per_10k) and run.trend in {"flat", "levelled off", "growing"}


def _synthetic(rss: list[float]) -> RssRun:
    t = np.linspace(0, 10, len(rss))
    total = pd.DataFrame({"t": t, "requests": (t * 1_000).astype(int), "rss_mib": rss, "workers": 1})
    return RssRun(total.assign(pid=1, role="worker"), total, LoadResult(), 10.0)


def test_trend_tells_a_leak_from_a_cache_filling_to_its_bound() -> None:
    steps = 21
    assert _synthetic([100.0] * steps).trend == "flat"
    leak = _synthetic([100.0 + 2 * i for i in range(steps)])  # the same slope to the end
    assert leak.trend == "growing" and leak.slope_mib_per_10k == pytest.approx(40, rel=0.01)
    filling = _synthetic([100.0 + min(i, 8) * 3 for i in range(steps)])  # grows, then stays at its bound
    assert filling.trend == "levelled off" and filling.growth_mib == pytest.approx(24)
    assert filling.late_slope_mib_per_10k == pytest.approx(0, abs=1e-6)


async def test_a_stopped_server_and_bad_intervals_are_refused() -> None:
    settings = ApiSettings(database_url="postgresql://127.0.0.1:1/x", redis_url=None, schema="t_rss_never")
    server = ApiServer(settings)
    with pytest.raises(RuntimeError, match="not running"):
        await rss_under_load(server, scenario=product_scenario(), duration=2.0)
    with pytest.raises(ValueError, match="interval=0"):
        await rss_under_load(server, scenario=product_scenario(), duration=2.0, interval=0)
    with pytest.raises(ValueError, match="duration=1.0"):
        await rss_under_load(server, scenario=product_scenario(), duration=1.0, interval=0.5)
