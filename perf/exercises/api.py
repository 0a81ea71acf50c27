"""Exercises for notebook 05: find the bottleneck of a slowed API by measuring, the share of
the latency a phase takes over the whole traffic mix (weighted by the requests, not by the endpoints),
and the one recommendation a run's measurements warrant first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, cast

import asyncpg
import redis.asyncio as redis

from perf.api.server import ApiServer
from perf.api.settings import ApiMode, ApiSettings, new_token
from perf.cache.demo_keys import unlink_prefix
from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise, scratch_names, service_urls
from perf.load import ClosedModel, LoadResult, ServerSampler, calibrate, run_load, time_breakdown
from perf.load.analysis.recommend import Measurements, measurements_from, recommend
from perf.load.product import api_measurements, product_scenario
from perf.runs import replayable

#: What the check accepts for each part of the answer.
_ROUTE, _PHASE, _FUNCTION = "/products", "app", "format_listing"


@exercise("05.bottleneck", title="find the bottleneck: the route, the phase and the function", answer="BOTTLENECK",
          nudge="Load the slowed server with the product scenario: which endpoint's server time stands out, "
                "and which Server-Timing phase holds it?")
async def bottleneck(answer: dict[str, str], *, settings: Settings, **_ignored: Any) -> Report:
    """``BOTTLENECK`` names the slowed route (``"GET /path"``), its ``Server-Timing`` phase
    (``"db"``, ``"cache"`` or ``"app"``) and the function that costs the time."""
    report = Report(hint="Measure before guessing: time_breakdown() splits each endpoint's server time into "
                         "db, cache and app; the route whose time grew is mostly one of them. A profile of that "
                         "route under load (flame_svg) shows, above the route's handler, one wide box that is "
                         "neither the database driver nor the cache: its name is the answer.")
    if not isinstance(answer, dict) or not {"route", "phase", "function"} <= set(answer):
        report.require("BOTTLENECK is a dict with 'route', 'phase' and 'function'", False, repr(answer)[:80])
        return report
    route = str(answer["route"]).strip().split("?", 1)[0]
    path = route.split(None, 1)[-1] if route.upper().startswith("GET ") else route
    report.require("the route is the slowed one", path.rstrip("/") == _ROUTE,
                   f"{answer['route']!r}: its server time is not the one that grew")
    report.require("the phase is where its time goes", str(answer["phase"]).strip().lower() == _PHASE,
                   f"{answer['phase']!r}: not the phase that holds the slowed route's time")
    function = str(answer["function"]).strip().rsplit(".", 1)[-1].removesuffix("()")
    report.require("the function is the one that costs the time", function == _FUNCTION,
                   f"{answer['function']!r}: not the widest box above the route's handler")
    return report




def _db_share(result: LoadResult) -> tuple[float, float]:
    """(weighted by each endpoint's responses, unweighted mean over endpoints) of db time / client time."""
    breakdown = time_breakdown(result)
    counts = breakdown.index.map(lambda e: result.histograms[e].count).to_numpy(dtype=float)
    weighted = float((breakdown["db_ms"] * counts).sum() / (breakdown["client_ms"] * counts).sum())
    return weighted, float(breakdown["db_ms"].mean() / breakdown["client_ms"].mean())


async def _mixed_run(settings: Settings, database_url: str | None, redis_url: str | None) -> LoadResult:
    """The product API under a skewed mix: 90% cached list pages, 8% items, 2% writes (PostgreSQL-bound)."""
    db_url, r_url = service_urls(settings, database_url, redis_url)
    schema, _ = scratch_names("05.db_share")
    token = new_token()
    scenario = product_scenario(products=200, categories=5, list_weight=90, item_weight=8, write_weight=2,
                                cursor_share=0, token=token)
    try:
        with ApiServer(ApiSettings(database_url=db_url, redis_url=r_url, schema=schema, products=200,
                                   api_token=token, task_workers=1)) as server:
            await run_load(server.url, model=ClosedModel(users=4, duration=0.5), scenario=scenario)  # warm the cache
            return await run_load(server.url, model=ClosedModel(users=4, duration=1.5), scenario=scenario)
    finally:
        await _drop_scratch(db_url, r_url, schema)


async def _drop_scratch(database_url: str, redis_url: str, schema: str) -> None:
    """Drop a check's scratch schema and the cache keys its server wrote under ``<schema>:``."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()
    client = redis.from_url(redis_url)
    try:
        await unlink_prefix(client, f"{schema}:")
    finally:
        await client.aclose()


@exercise("05.db_share", title="the share of the latency spent in the database, over the whole mix",
          answer="db_share",
          nudge="Look at the count of responses per endpoint beside the table: does every endpoint weigh the same?")
async def db_share(share_of: Callable[[LoadResult], float], *, settings: Settings, database_url: str | None = None,
                   redis_url: str | None = None, **_ignored: Any) -> Report:
    """``db_share(result)`` is the share of the latency the clients saw that the server spent in
    PostgreSQL, over every response of the run. The check runs the API under a mix of 90% cached
    list pages and 2% writes and compares with the answer computed from the same result."""
    report = Report(hint="A mean over endpoints weighs a rare, slow endpoint like the common, fast one. Over "
                         "the whole mix, each endpoint counts as often as it was answered: total the database "
                         "time of every response and divide by the total latency of every response.")
    # the run is data, the learner's function is what is checked: a replayed notebook replays the run too
    result = await replayable("exercise-05.db_share", lambda: _mixed_run(settings, database_url, redis_url),
                              settings=settings)
    expected, unweighted = _db_share(result)
    got = await call_learner(report, "db_share(result)", share_of, result, hint=report.hint)
    ok = isinstance(got, int | float) and abs(float(got) - expected) <= max(0.005, 0.05 * expected)
    seen = f"{got!r} against {expected:.3f}"
    if isinstance(got, int | float) and abs(float(got) - unweighted) <= max(0.005, 0.05 * unweighted):
        seen += " (that is the mean over endpoints, each endpoint weighing the same)"
    report.require("the share is weighted by the responses of each endpoint", ok, seen)
    report.require("the share is a fraction between 0 and 1", isinstance(got, int | float) and 0 <= got <= 1,
                   repr(got))
    return report


class Figures(TypedDict):
    """The measured figures of one load run that ``recommend_next`` reads (None: not measured)."""

    error_rate: float
    client_bound: bool
    cpu_per_worker: float | None
    pool_wait_p99_ms: float | None
    hit_ratio: float | None
    db_share: float
    cache_share: float
    app_share: float


#: The label for each area of :func:`perf.load.analysis.recommend.recommend` the figures can reach
#: (its saturation and network rules read late, dropped and outside-server figures, not given here).
LABELS = {"client": "fix the load generator", "errors": "fix errors", "server": "add a worker",
          "pool": "bigger pool", "cache": "cache more", "db": "add an index / fewer queries",
          "framework": "trim the framework"}
NOTHING = "nothing to do"
_HEALTHY = Figures(error_rate=0.0, client_bound=False, cpu_per_worker=0.4, pool_wait_p99_ms=0.5, hit_ratio=0.95,
                   db_share=0.3, cache_share=0.3, app_share=0.4)


def _case(**changes: Any) -> Figures:
    """The healthy run's figures with ``changes``."""
    return cast(Figures, {**_HEALTHY, **changes})


#: (what the case shows, its figures, the label it warrants). tests/test_exercises_recommend.py
#: holds the product's recommend() to the same labels, so the starter's rules stay the product's.
RECOMMEND_CASES: list[tuple[str, Figures, str]] = [
    ("a healthy run", _case(), NOTHING),
    ("a client-bound run, even with errors and a busy database", _case(client_bound=True, error_rate=0.05,
                                                                       db_share=0.8, cache_share=0.1,
                                                                       app_share=0.1), LABELS["client"]),
    ("errors over 1%, before a saturated CPU and a busy database", _case(error_rate=0.03, cpu_per_worker=0.97,
                                                                         db_share=0.7, cache_share=0.1,
                                                                         app_share=0.2), LABELS["errors"]),
    ("errors within the 1% budget, and a busy database", _case(error_rate=0.004, db_share=0.7, cache_share=0.1,
                                                               app_share=0.2), LABELS["db"]),
    ("a CPU-bound worker, before pool waits and misses", _case(cpu_per_worker=0.95, pool_wait_p99_ms=30.0,
                                                               hit_ratio=0.5), LABELS["server"]),
    ("pool waits, before misses and a busy database", _case(pool_wait_p99_ms=25.0, hit_ratio=0.5, db_share=0.8,
                                                            cache_share=0.1, app_share=0.1), LABELS["pool"]),
    ("misses, before a busy database", _case(hit_ratio=0.4, db_share=0.8, cache_share=0.1, app_share=0.1),
     LABELS["cache"]),
    ("the framework's time", _case(db_share=0.2, cache_share=0.1, app_share=0.7), LABELS["framework"]),
    ("figures not measured (None) fire no rule", _case(pool_wait_p99_ms=None, hit_ratio=None, db_share=0.6,
                                                       cache_share=0.0, app_share=0.4), LABELS["db"]),
]


def product_label(figures: Figures) -> str:
    """The label of what :func:`perf.load.analysis.recommend.recommend` says first on these figures."""
    shares = {"db": figures["db_share"], "cache": figures["cache_share"], "app": figures["app_share"]}
    hit_ratio = {} if figures["hit_ratio"] is None else {"/products": figures["hit_ratio"]}
    m = Measurements(client_bound=figures["client_bound"], error_rate=figures["error_rate"],
                     server_cpu=figures["cpu_per_worker"], workers=1, pool_wait_p99_ms=figures["pool_wait_p99_ms"],
                     hit_ratio=hit_ratio, server_shares=shares)
    recommendations = recommend(m)
    return LABELS[recommendations[0].area] if recommendations else NOTHING


def _figures(m: Measurements) -> Figures:
    """The figures of :class:`Measurements` a learner gets (one worker; the lowest hit ratio of any endpoint)."""
    cpu = m.server_cpu / m.workers if m.server_cpu is not None and m.workers else None
    return Figures(error_rate=m.error_rate, client_bound=m.client_bound, cpu_per_worker=cpu,
                   pool_wait_p99_ms=m.pool_wait_p99_ms, hit_ratio=min(m.hit_ratio.values()) if m.hit_ratio else None,
                   db_share=m.server_shares.get("db", 0.0), cache_share=m.server_shares.get("cache", 0.0),
                   app_share=m.server_shares.get("app", 0.0))


async def _uncached_run(settings: Settings, database_url: str | None, redis_url: str | None) -> Figures:
    """The product API without its cache under the product mix: the run's figures, measured as notebook 05 does
    (a calibration of the generator for client-bound, server CPU and /metrics.json sampled during the run)."""
    db_url, r_url = service_urls(settings, database_url, redis_url)
    schema, _ = scratch_names("05.recommend")
    token = new_token()
    scenario = product_scenario(products=200, categories=5, token=token)
    try:
        with ApiServer(ApiSettings(database_url=db_url, redis_url=r_url, schema=schema, products=200,
                                   api_token=token, task_workers=1, mode=ApiMode.parse("all,-cache"),
                                   bare_routes=True)) as server:
            ceiling = await calibrate(server.url, path="/bare/hello", duration=0.5)
            await run_load(server.url, model=ClosedModel(users=4, duration=0.3), scenario=scenario)  # warm the pool
            async with ServerSampler(pid=server.pid, metrics_url=server.url + "/metrics.json",
                                     interval=0.25) as sampler:
                result = await run_load(server.url, model=ClosedModel(users=4, duration=1.0), scenario=scenario)
    finally:
        await _drop_scratch(db_url, r_url, schema)
    cpu = float(sampler.cpu.mean()) if len(sampler.cpu) else None
    metrics = sampler.metrics[-1] if sampler.metrics else {}
    return _figures(measurements_from(result, calibration=ceiling, server_cpu=cpu, workers=1,
                                      **api_measurements(metrics)))


@exercise("05.recommend", title="optimization recommendations that rest on the evidence", answer="recommend_next",
          nudge="Before asking where the server's time goes, ask whether these figures can be trusted at all, "
                "and whether the service even works: which figures say so?")
async def recommend_next(choose: Callable[[Figures], str], *, settings: Settings, database_url: str | None = None,
                         redis_url: str | None = None, **_ignored: Any) -> Report:
    """``recommend_next(m)`` names the one most urgent action for a run's figures, as one of the
    labels of the starter. The check runs cases of known answer, then a real run of the product API
    without its cache, whose answer is what :func:`perf.load.analysis.recommend.recommend` says first."""
    report = Report(hint="The rules run in a fixed order and the first that fires is the answer. Figures that "
                         "cannot be trusted come first (a client-bound run measured the generator, whatever else "
                         "it shows), then a failing service (fix before tuning), then capacity (a saturated worker, "
                         "waits for a connection, cache misses), and only then where the server's time goes. A "
                         "figure that was not measured (None) fires no rule.")
    # the run is data, the learner's function is what is checked: a replayed notebook replays the run too
    real = await replayable("exercise-05.recommend", lambda: _uncached_run(settings, database_url, redis_url),
                            settings=settings)
    expected_real = product_label(real)
    cases = [*RECOMMEND_CASES, (f"a real run of the product API without its cache (db {real['db_share']:.0%} of "
                                "server time): what recommend() says first", real, expected_real)]
    for text, figures, expected in cases:
        got = await call_learner(report, "recommend_next(m)", choose, figures.copy(), hint=report.hint)
        ok = isinstance(got, str) and got.strip().lower() == expected
        seen = "" if ok else f"got {got!r}, expected {expected!r}" + (
            "" if isinstance(got, str) and got.strip().lower() in {*LABELS.values(), NOTHING} else
            " (not one of the labels)")
        report.require(f"{text}: {expected!r}", ok, seen)
    return report
