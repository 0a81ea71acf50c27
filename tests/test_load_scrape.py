"""The server's /metrics around and during a load run: counts agree, percentiles line up, series follow steps."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from perf.lab.server_metrics import server_vs_client, stepped_scrapes
from perf.load.analysis.scrape import parse_scrape, server_percentiles
from perf.load.models import OpenModel
from perf.load.product import ROUTES, product_scenario
from tests._api_helpers import drop_namespace, unique_name

PRODUCTS = 200


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_scrape")
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=PRODUCTS)
    try:
        with ApiServer(settings, workers=2) as srv:
            yield srv
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


async def test_server_and_generator_count_the_same_requests_per_route(server: ApiServer):
    scenario = product_scenario(products=PRODUCTS, token=server.token)
    cmp = await server_vs_client(server, scenario=scenario, model=OpenModel(rate=150, duration=1.0), rounds=1,
                                 warmup=0.2)
    table = cmp.rounds.set_index("route")
    assert set(table.index) == set(ROUTES.values())
    assert (table["server_count"] == table["client_count"]).all(), table  # every response, on both sides
    assert table["server_count"].sum() == 150
    # the server's p99 lies in its bucket, and no client waits less than the server worked at p50
    assert ((table["p99_low_ms"] <= table["server_p99_ms"]) & (table["server_p99_ms"] <= table["p99_high_ms"])).all()
    assert (table["client_p50_ms"] >= table["server_p50_ms"] * 0.5).all()
    text = cmp.describe()
    assert "measurement, not a finding" in text and "GET /products/{product_id}" in text


async def test_scraped_series_follow_a_stepped_load(server: ApiServer):
    scenario = product_scenario(products=PRODUCTS, token=server.token, write_weight=0)
    series, result = await stepped_scrapes(server, scenario=scenario, steps=[(20, 1.5), (160, 1.5)], interval=0.25)
    assert result.completed == 20 * 1.5 + 160 * 1.5
    # What the server counted in each scrape interval (rate x interval), before and after the step. Counts,
    # not a median of rates: on a machine busy with other work the server falls behind the step and
    # catches up later, which moves its rates around but not what it counted after the step.
    counted = series["rps"] * series["t"].diff().fillna(series["t"])
    before, after = counted[series["t"] <= 1.5].sum(), counted[series["t"] > 1.5].sum()
    assert after > 3 * before, series  # 8x the arrivals over the same 1.5 s: the server's counts follow
    assert not math.isnan(series["p99_ms"].dropna().iloc[0])


def test_bucket_deltas_ignore_routes_without_new_requests():
    before = parse_scrape('# TYPE http_request_duration_seconds histogram\n'
                          'http_request_duration_seconds_bucket{method="GET",route="/a",le="0.001"} 5.0\n'
                          'http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 5.0\n'
                          'http_request_duration_seconds_count{method="GET",route="/a"} 5.0\n'
                          'http_request_duration_seconds_sum{method="GET",route="/a"} 0.001\n')
    after = parse_scrape('# TYPE http_request_duration_seconds histogram\n'
                         'http_request_duration_seconds_bucket{method="GET",route="/a",le="0.001"} 5.0\n'
                         'http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 9.0\n'
                         'http_request_duration_seconds_count{method="GET",route="/a"} 9.0\n'
                         'http_request_duration_seconds_sum{method="GET",route="/a"} 0.01\n')
    assert server_percentiles(before, before).empty
    table = server_percentiles(before, after)
    assert table.loc["GET /a", "count"] == 4
    assert table.loc["GET /a", "p99_ms"] == 1.0  # all four above the last finite bound: that bound
