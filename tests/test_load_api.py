"""perf.load against the real product API: the CLI gate and the per-mode comparison."""

from __future__ import annotations

import subprocess
import sys

import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings, new_token
from perf.lab.modes import compare_modes
from perf.load.analysis.recommend import measurements_from
from perf.load.cli import main
from perf.load.concurrency import sweep
from perf.load.models import ClosedModel
from perf.load.product import api_measurements, product_scenario


def test_cli_gates_the_real_api(database_url: str, redis_url: str, pg_schema: str, redis_prefix: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, mode="all", schema=pg_schema, products=200,
                           cache_namespace=redis_prefix.rstrip(":"))
    with ApiServer(settings) as server:
        url = server.url + "/products?category=1"
        met = subprocess.run([sys.executable, "-m", "perf", "load", url, "--duration", "1s", "--rate", "50",
                              "--slo", "errors<1%", "--slo", "p99<2s"], capture_output=True, text=True, timeout=60)
        missed = main([url, "--duration", "0.5s", "--users", "2", "--slo", "p50<0.001ms"])
        missed_out = capsys.readouterr().out
        bad = main([url, "--slo", "p99 below 5ms"])
        bad_err = capsys.readouterr().err
    assert met.returncode == 0, met.stdout + met.stderr
    assert "SLO errors<1%: 0.000% met" in met.stdout
    assert missed == 1 and "MISSED" in missed_out
    assert bad == 2 and "cannot parse SLO" in bad_err


async def test_compare_modes_measures_each_mode(database_url: str, redis_url: str, pg_schema: str,
                                                redis_prefix: str) -> None:
    token = new_token()
    comparison = await compare_modes(
        ["baseline", "naive", "all"], database_url=database_url, redis_url=redis_url, schema=pg_schema, products=200,
        scenario=product_scenario(products=200, categories=20, token=token), model=ClosedModel(users=4, duration=1.0),
        warmup=0.3, cache_namespace=redis_prefix.rstrip(":"), api_token=token, rounds=2, keep_servers=True)
    table = comparison.table()
    assert list(comparison.rounds("rps").index) == [0, 1]  # two interleaved rounds on servers kept up
    merged = comparison.merged("all")
    assert merged.responses == sum(comparison.run("all", r).result.responses for r in (0, 1))
    assert list(table.index) == ["baseline", "naive", "all"]
    assert table.loc["baseline", "speedup"] == 1.0
    assert set(comparison.speedups()["mode"]) == {"baseline", "naive", "all"}
    assert (table["error_rate"] < 0.01).all()
    everything = comparison.run("all")
    result = everything.result
    assert set(result.histograms) <= {"list", "list_after", "item", "write"} and "list_after" in result.histograms
    assert comparison.run("baseline").metrics["db.max_size"] == 20  # the syllabus' asyncpg pool
    # Server-Timing came back from the API and was split into its parts.
    assert {"db", "cache", "app", "total"} <= set(result.server_timing["list"])
    extra = api_measurements(everything.metrics)
    assert extra["pool_max_size"] == 10 and 0 <= extra["hit_ratio"]["/products"] <= 1
    assert measurements_from(result, **extra).pool_max_size == 10
    # the server's own X-Cache counts: no cache in naive, some hits where a cache is on
    assert table.loc["naive", "hit_ratio"] == 0.0
    assert 0 < table.loc["all", "hit_ratio"] <= 1 and 0 < table.loc["baseline", "hit_ratio"] <= 1
    # the scenario sends a browser's Accept-Encoding, so "all" (compression on) sends fewer bytes on the wire
    baseline = comparison.run("baseline").result
    assert result.bytes_per_response() < 0.5 * baseline.bytes_per_response()
    # the seed cache's Redis round trips are timed as cache, not left inside app
    cache_ms, n = baseline.server_timing["list"]["cache"]
    assert n and cache_ms / n > 0.01


async def test_sweep_over_the_real_api(database_url: str, redis_url: str, pg_schema: str,
                                       redis_prefix: str) -> None:
    settings = ApiSettings(database_url=database_url, redis_url=redis_url, mode=ApiMode.parse("all"),
                           schema=pg_schema, products=200, cache_namespace=redis_prefix.rstrip(":"),
                           api_token=new_token())
    with ApiServer(settings) as server:
        report = await sweep(server.url, users=[1, 2, 4], duration=0.5, warmup=0.3, progress=False,
                             scenario=product_scenario(products=200, categories=20, token=server.token))
    levels = report.levels
    assert list(levels["users"]) == [1, 2, 4]
    assert (levels["rps"] > 0).all() and (levels["error_rate"] < 0.01).all()
    assert (levels["scheduled"] == levels["completed"] + levels["failed"] + levels["timed_out"]).all()
    # Little's law holds in a closed model (generator overhead between requests lowers it a little).
    assert levels["little_ratio"].between(0.2, 1.2).all(), levels
    for result in report.results:
        result.check_accounting()
    assert report.saturation is None or report.saturation in (1, 2, 4)
    assert "peak" in report.describe()


def test_product_scenario_pages_with_keyset_cursors() -> None:
    import random

    scenario = product_scenario(products=20_000, categories=20)
    assert scenario.shares()["list_after"] == pytest.approx(0.2)
    rng = random.Random(3)
    paths = [scenario.pick(rng).target for _ in range(400)]
    cursor = [p for p in paths if "after=" in p]
    assert 40 < len(cursor) < 120  # ~20% of the mix
    for path in cursor:  # page k of a category starts after id ~ (k - 1) * per_page * categories
        query = dict(part.split("=") for part in path.split("?")[1].split("&"))
        assert 2 <= int(query["page"]) <= 10 and int(query["after"]) == (int(query["page"]) - 1) * 20 * 20
    assert "list_after" not in product_scenario(cursor_share=0).shares()
    for endpoint in scenario.endpoints:  # what a browser sends: without it no server may compress
        assert endpoint.headers is not None and "br" in endpoint.headers["accept-encoding"]
    with pytest.raises(ValueError, match="cursor_share=2"):
        product_scenario(cursor_share=2)
