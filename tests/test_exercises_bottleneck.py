"""Exercise 05.bottleneck is findable by measuring: the slowed route stands out in Server-Timing's
`app` phase, and its function is among the widest frames of a profile under load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perf.api.settings import ApiSettings, new_token
from perf.exercises.slowed_api import BottleneckServer
from perf.load import ClosedModel, run_load, time_breakdown
from perf.load.analysis import ProfiledServer, widest_frames
from perf.load.product import product_scenario
from tests._api_helpers import drop_namespace, unique_name


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Iterator[ApiSettings]:
    schema = unique_name("t_slowed")
    yield ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=200, task_workers=1,
                      api_token=new_token())
    drop_namespace(database_url, schema, redis_url, schema)


async def test_the_slowed_route_shows_in_server_timing_and_in_the_flame_graph(settings: ApiSettings) -> None:
    scenario = product_scenario(products=200, categories=5, cursor_share=0, token=settings.api_token)
    slowed = BottleneckServer(settings)
    with slowed:
        await run_load(slowed.url, model=ClosedModel(users=4, duration=0.5), scenario=scenario)
        run = await run_load(slowed.url, model=ClosedModel(users=4, duration=1.5), scenario=scenario)
    breakdown = time_breakdown(run)
    assert breakdown.loc["list", "app_ms"] > 5 * breakdown.loc["item", "app_ms"], breakdown
    assert breakdown.loc["list", "app_ms"] > 5 * breakdown.loc["list", "db_ms"] + breakdown.loc["list", "cache_ms"]
    with ProfiledServer(slowed.module_args()) as profiled:
        await run_load(profiled.url, model=ClosedModel(users=4, duration=0.5), scenario=scenario)
        profiled.begin()
        await run_load(profiled.url, model=ClosedModel(users=4, duration=1.5), scenario=scenario)
        widest = widest_frames(profiled.end(), n=5)
    assert "format_listing" in set(widest["function"]), widest
