"""Exercises for notebook 05: find the bottleneck of a slowed API by measuring, and the share of
the latency a phase takes over the whole traffic mix (weighted by the requests, not by the endpoints).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import redis.asyncio as redis

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings, new_token
from perf.cache.demo_keys import unlink_prefix
from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise, scratch_names, service_urls
from perf.load import ClosedModel, LoadResult, run_load, time_breakdown
from perf.load.product import product_scenario
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
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()
        client = redis.from_url(r_url)
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
