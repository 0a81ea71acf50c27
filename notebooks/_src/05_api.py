# %% [markdown]
# # 05 · The product API under load: benchmark, stress, find the bottleneck, recommend
#
# Notebooks 01-04 measured each technique on its own. Here the whole product API
# (`perf.api`, Nexios under uvicorn) runs as a real server process and `perf.load`
# puts it under load: first the seed-style baseline, then each optimisation switched
# on in turn, then a stress ramp to the knee, a breakdown of where the time goes,
# recommendations drawn from those measurements, and the framework's own cost.
#
# One rule before any number: **a load generator slower than the server measures
# itself.** So we start by measuring the generators.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. In run 20261205-023640-workbook (quick profile, the default; a 2-core machine shared
# with other work, load average ~5) it ran in **5.7 minutes** (before section 1 took three rounds); the
# full profile took about **11 minutes** on a 2-core machine (measured before runs had ids). The
# profile is read once, when the kernel starts: to switch, start JupyterLab as `PERF_PROFILE=full python3 tasks.py lab`
# (or `quick`) and restart the kernel. Exercises with automatic checks are at the end.

# %% tags=["plumbing"]
import os

import matplotlib.pyplot as plt
import pandas as pd
import redis.asyncio as redis
from IPython.display import Markdown, display

from perf import charts
from perf.api.server import ApiServer
from perf.api.settings import ApiSettings, new_token
from perf.config import get_settings
from perf.lab.modes import compare_modes, run_api
from perf.load import (
    ClosedModel,
    OpenModel,
    calibrate,
    check_slos,
    flag_client_bound,
    knee_chart,
    measurements_from,
    over_time_chart,
    rate_steps,
    recommend,
    run_load,
    server_shares,
    spectrum_chart,
    stress,
    sweep,
    sweep_chart,
    time_breakdown,
)
from perf.load.analysis import ProfiledServer, compare_drivers, compare_paths, driver_ratios, top_frames
from perf.load.demo_server import TestServer
from perf.load.product import api_measurements, product_scenario
from perf.measure import machine_info, summarize
from perf.services import ensure_services
from perf.services.server_process import pin_process, split_cores

settings = get_settings()
services = ensure_services(settings)
info = machine_info()
SCHEMA = "nb05_api"  # this notebook's PostgreSQL schema and Redis key prefix
PRODUCTS = settings.pick(2_000, 20_000)
SECONDS = settings.pick(1.0, 5.0)  # length of each measured run
MODE_ROUNDS = 3  # a verdict needs >= 3 interleaved rounds: the quick profile makes each one shorter
MODE_SECONDS = settings.pick(0.5, 5.0)
server_cores, generator_cores = split_cores()
original_affinity = os.sched_getaffinity(0)
pin_process(os.getpid(), generator_cores)  # the generator (this kernel) stays off the server's cores
TOKEN = new_token()  # the write token every API server here gets, and the scenario's writes send
api = dict(database_url=services.database_url, redis_url=services.redis_url, schema=SCHEMA, api_token=TOKEN)
print("profile:", settings.profile, "| server cores", sorted(server_cores),
      "| generator cores", sorted(generator_cores))

# %% [markdown]
# ## 1 · Calibrate the generators
# The same bare ASGI app (uvicorn, uvloop + httptools), the same 32 connections, three
# generators taking turns: `perf.load`'s built-in driver (HTTP/1.1 keep-alive on an
# asyncio Protocol, responses parsed by httptools), httpx, and `wrk` (C) when installed.

# %%
with TestServer(cpu=server_cores) as bare:
    drivers = await compare_drivers(bare.url, rounds=MODE_ROUNDS, seconds=settings.pick(0.5, 3.0), cpu=generator_cores,
                                    server_pid=bare.pid)
fig = charts.bar_with_spread(summarize(drivers, by="driver", value="rps"), unit="", value_label="requests/s",
                             title="Load generators against the same bare ASGI server", info=info)
plt.show()

# %%
rps = drivers.groupby("driver")["rps"].median()
server = drivers.groupby("driver")[["server_cpu", "server_us"]].median()
from perf.measure import compare

by_driver = drivers.sort_values("round").groupby("driver")["rps"].apply(list)
vs_httpx = compare(by_driver["httpx"], by_driver["builtin"], a="httpx", b="the built-in driver",
                   larger_is_better=True)
text = (f"The built-in driver reached **{rps['builtin']:,.0f} req/s**, httpx **{rps['httpx']:,.0f} req/s** "
        f"({vs_httpx}) with its generator at "
        f"{drivers[drivers['driver'] == 'httpx']['cpu'].median():.0%} of a core and the server at "
        f"{server.loc['httpx', 'server_cpu']:.0%} of its own: httpx spends most of each request in its own "
        f"Python layers, so a server faster than ~{rps['httpx']:,.0f} req/s measured with it is really "
        "measuring httpx.")
if "wrk" in rps:
    vs_wrk = driver_ratios(drivers, "builtin", "wrk")
    busy = min(server.loc["builtin", "server_cpu"], server.loc["wrk", "server_cpu"])
    text += (f" wrk reached **{rps['wrk']:,.0f} req/s**; the built-in driver ran at **{vs_wrk:.2f}x** of it, "
             f"with the server at {server.loc['builtin', 'server_cpu']:.0%} and "
             f"{server.loc['wrk', 'server_cpu']:.0%} of its core.")
    if busy >= 0.9:
        text += (" Under both the server was the limit, so the ratio says how much server work each driver's "
                 f"way of sending costs: {server.loc['builtin', 'server_us']:.0f} µs of server CPU a request "
                 f"with the built-in driver, {server.loc['wrk', 'server_us']:.0f} µs with wrk. Either can "
                 "saturate this server; neither is measuring itself.")
else:
    text += f" wrk was not measured: {drivers.attrs['skipped']['wrk']}."
display(Markdown(text))

# %% [markdown]
# ## 2 · Baseline vs each optimisation
# The API has five switches (`perf.api.settings.ApiMode`, whose docstring spells out every
# mode). The **baseline** is the syllabus' own mini-project: asyncpg's pool (5..20
# connections), its Redis `CacheManager` (with its invalidation bug: after a write, list
# pages stay stale until their TTL), one JOIN for the detail page, count + OFFSET for
# the list page. **naive** is the design before anyone optimised: a new connection per
# request, N+1 queries, no cache.
#
# | switch | on (`all`) | `baseline` (the syllabus') | `naive` |
# |---|---|---|---|
# | `cache` | MultiLevelCache (L1 + Redis, tag invalidation) | the seed's CacheManager (Redis, stale lists) | none |
# | `pool` | `perf.pool` | `asyncpg.create_pool`, 5..20 | connect per request |
# | `join` | JOIN + `array_agg` | JOIN (on: the syllabus joins) | N+1 |
# | `keyset` | `?after=` seeks `id > after` | OFFSET | OFFSET |
# | `compression` | br/zstd/gzip middleware | none (the seed never registers its middleware) | none |
#
# Each switch is turned on alone on top of the baseline (`join` is already on there),
# then all of them. Every mode serves its routes through the same lean Nexios path
# (section 8 measures what that path costs). Each
# mode is its own server process (same data, its own cache namespace), warmed up, then
# measured with 16 concurrent users on this traffic mix (`list_after`: deeper pages asked
# for by number and by keyset cursor `?after=`):

# %%
# NBVAL_CHECK_OUTPUT
scenario = product_scenario(products=PRODUCTS, categories=20, token=TOKEN)
print(scenario)

# %%
MODES = ["baseline", "naive", "baseline,+cache", "baseline,+pool", "baseline,+keyset", "baseline,+compression",
         "all"]
modes = await compare_modes(MODES, **api, cpu=sorted(server_cores), products=PRODUCTS, scenario=scenario,
                            model=ClosedModel(users=16, duration=MODE_SECONDS), rounds=MODE_ROUNDS,
                            warmup=settings.pick(0.3, 1.0), keep_servers=True)
table = modes.table()
table.round(2)

# %%
fig = charts.bar_with_spread(summarize(modes.speedups(), by="mode", value="speedup"), unit="",
                             value_label="throughput vs baseline (x)", log=True,
                             title="Each optimisation's contribution (req/s relative to the syllabus' design)",
                             info=info)
plt.show()

# %%
from perf.measure import combine, compare, rank

rps = modes.rounds("rps")
per_round = rps.div(rps["baseline"], axis=0)  # each round's speedup over that round's baseline
singles = [m for m in MODES if m.startswith("baseline,+")]
switch = {m: f"`{m.split(',+')[-1]}`" for m in singles}
everything = compare(rps["all"], rps["baseline"], a="everything on", b="the baseline", larger_is_better=True)
naive = compare(rps["naive"], rps["baseline"], a="the naive design", b="the baseline", larger_is_better=True)
alone = {m: compare(rps[m], rps["baseline"], a=f"{switch[m]} alone", b="the baseline", larger_is_better=True)
         for m in singles}
ranking = rank({switch[m]: rps[m].tolist() for m in singles}, larger_is_better=True)
together = combine({switch[m]: per_round[m].tolist() for m in singles}, per_round["all"].tolist())
wire = table["bytes_per_response"]
hits = modes.rounds("hit_ratio")
hit_verdict = (compare(hits["baseline"], hits["all"], a="the baseline's hit ratio", b="everything on's",
                       larger_is_better=True, words=("higher", "lower"))
               if (hits[["baseline", "all"]] > 0).all().all() else None)
display(Markdown(
    f"The syllabus' design (baseline) served **{table.loc['baseline', 'rps']:,.0f} req/s** "
    f"(p50 {table.loc['baseline', 'p50_ms']:,.1f} ms), everything on **{table.loc['all', 'rps']:,.0f} req/s** "
    f"(p50 {table.loc['all', 'p50_ms']:,.1f} ms), the naive design **{table.loc['naive', 'rps']:,.0f} req/s** "
    f"(medians of {MODE_ROUNDS} interleaved rounds of {MODE_SECONDS:g} s). In throughput, {everything}; "
    f"{naive}.\n\n"
    "Each switch alone against the baseline:\n\n"
    + "\n".join(f"- {verdict}" for verdict in alone.values())
    + f"\n\nRanked by throughput, {ranking}. (`keyset` changes only the `list_after` pages, "
    f"{scenario.shares()['list_after']:.0%} of the mix.) Against the single switches, {together}.\n\n"
    + ("" if all(v.decided for v in (everything, ranking, together, *alone.values())) else
       f"Where a line says *inconclusive*, {MODE_ROUNDS} rounds of {MODE_SECONDS:g} s on this machine cannot "
       "decide it: the full profile (`PERF_PROFILE=full`, rounds of 5 s) and this section's chart of per-round "
       "speedups are where to look.\n\n")
    + f"**On the wire.** The scenario sends a browser's `Accept-Encoding`, so compression has something to do: "
    f"a response averaged **{wire['baseline']:,.0f} bytes** of body in the baseline and "
    f"**{wire['baseline,+compression']:,.0f}** with `compression` "
    f"({wire['baseline'] / wire['baseline,+compression']:.1f}x fewer); everything on sent {wire['all']:,.0f}.\n\n"
    f"Cache hits, from each server's own `X-Cache` counts since it started: baseline "
    f"**{table.loc['baseline', 'hit_ratio']:.0%}**, everything on **{table.loc['all', 'hit_ratio']:.0%}**"
    + (f"; {hit_verdict}" if hit_verdict is not None else "")
    + (". The syllabus' cache hits more often because its invalidation never clears a list page (after a write "
       "those stay stale until their TTL), while everything-on's cache drops exactly the pages a write changed, "
       "so their next reads go to PostgreSQL: part of its cost is correctness."
       if hit_verdict is not None and hit_verdict.kind == "faster" else ".")))

# %%
fig = spectrum_chart({"naive": modes.merged("naive"), "baseline": modes.merged("baseline"),
                      "all": modes.merged("all")},
                     title="Latency by percentile: naive, the syllabus' design (baseline) and everything on")
plt.show()

# %% [markdown]
# ## 3 · How many users before throughput stops growing?
# A **concurrency sweep**: the closed model at 1, 2, 4, ... users, one level after another
# after a warm-up, everything on. Throughput grows while the server has idle capacity;
# once it is saturated more users only queue, so p99 climbs while throughput stays flat.
# Little's law (users = throughput x latency, no think time) must hold at every level:
# a level where it does not lost requests or left users idle.

# %%
USERS = settings.pick([1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 16, 32, 64])
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:sweep"),
               cpu=sorted(server_cores)) as server:
    swept = await sweep(server.url, users=USERS, duration=SECONDS, warmup=settings.pick(0.5, 2.0),
                        scenario=scenario)
swept.levels[["users", "rps", "p50_ms", "p99_ms", "error_rate", "little_ratio"]].round(2)

# %%
fig = sweep_chart(swept, title="Concurrency sweep, everything on: throughput and p99 against users")
plt.show()

# %%
display(Markdown(f"{swept.describe()[0].upper()}{swept.describe()[1:]}."))

# %% [markdown]
# ## 4 · Stress: raise the arrival rate until the SLO breaks
# A closed model slows down with the server, hiding overload. Here an **open** model
# schedules requests at a fixed rate and measures latency from the *scheduled* send
# time, step by step, until p99 or the error rate misses the SLO. Every scheduled request
# is accounted: one that times out or is never sent counts as an error and enters the
# percentiles at the time it had waited. The ramp warms up first, grows by 1.5x until a
# step breaks, then bisects between the last good and the first bad rate until they are
# within 10%. A step that passed once may have been lucky, so the best passing rate is
# repeated 3 times: it counts as **sustainable** only if most repeats sustain it (>= 95% of
# the offered rate delivered and the SLO met); otherwise the ramp steps back down to the
# next rate that passed and repeats that. Before trusting the steps, calibrate the
# generator against the API's own trivial endpoint.

# %%
SLOS = ["p99<200ms", "errors<1%"]
start_rate = max(round(swept.peak_rps / 4), 5)
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:stress"),
               cpu=sorted(server_cores)) as server:
    ceiling = await calibrate(server.url, path="/bare/hello", duration=settings.pick(1.0, 2.0))
    rates = rate_steps(start_rate, factor=1.5, max_steps=settings.pick(8, 12))
    report = await stress(server.url, rates=rates, step_seconds=settings.pick(1.0, 3.0), slos=SLOS,
                          scenario=scenario, connections=64, timeout=2.0, repeats=3,
                          max_refine=settings.pick(3, 6))
report.steps.round(2)

# %%
fig = knee_chart(report, title="Latency vs offered load, everything on (the knee, SLO dashed)")
plt.show()

# %%
client_bound = [r.offered_rate for r in report.results if flag_client_bound(r, ceiling)]
sustained = report.max_sustainable
saturation_p99 = (swept.levels.set_index("users").loc[swept.saturation, "p99_ms"]
                  if swept.saturation is not None else swept.levels["p99_ms"].iloc[-1])
display(Markdown(
    f"{report.describe()[0].upper()}{report.describe()[1:]}. The generator's own ceiling against `/bare/hello` was "
    f"**{ceiling.ceiling:,.0f} req/s**, so "
    + (f"the steps at {', '.join(f'{r:,.0f}' for r in client_bound)} req/s ran within 20% of it and are a floor, "
       "not a measurement of the server. " if client_bound else
       "no step came within 20% of it: the knee is the server's, not the generator's. ")
    + (f"The open model sustains **{sustained:,.0f} req/s** within the SLO, the closed sweep peaked at "
       f"**{swept.peak_rps:,.0f} req/s** ({sustained / swept.peak_rps:.0%} of it). They answer different "
       "questions: the sweep's peak is *saturation*, the server kept busy by users who wait their turn "
       f"(at that point its p99 was {saturation_p99:,.0f} ms); the ramp's figure is the highest arrival rate "
       f"whose **latency** still meets `{SLOS[0]}` when arrivals do not wait for answers. Queueing theory says "
       "latency grows without bound as arrivals approach saturation, so the sustainable rate sits below the peak "
       "by however much queueing the SLO tolerates."
       if sustained else "No rate was sustained by the majority of its repeats: lower the start rate.")))

# %% [markdown]
# ## 5 · Where does the time go?
# Every response carries `Server-Timing: db;dur=…, cache;dur=…, app;dur=…, total;dur=…`.
# Averaged per endpoint and set against the latency the client saw, it splits a request
# into database, cache, framework + handler (`app`) and everything outside the server
# (network, kernel, queueing in front of the server and in the generator).

# %%
breakdowns = pd.concat({m: time_breakdown(modes.merged(m)) for m in ("baseline", "all")}, names=["mode", "endpoint"])
breakdowns.round(3)

# %%
from perf.load.analysis import mix_breakdown

shares = pd.DataFrame({m: server_shares(modes.merged(m)) for m in ("baseline", "all")}).fillna(0.0)
all_mix = mix_breakdown(modes.merged("all"))  # each endpoint weighted by its share of the responses
all_outside, all_client = all_mix["outside_server_ms"], all_mix["client_ms"]
display(Markdown(
    f"Over every response of the {MODE_ROUNDS} rounds (so weighted by the traffic mix), the baseline's server "
    f"time splits into {', '.join(f'{k} {v:.0%}' for k, v in shares['baseline'].items())} (the seed cache's "
    f"Redis round trips count as `cache`). "
    f"With everything on, the server's parts are "
    f"{', '.join(f'{k} {v:.0%}' for k, v in shares['all'].items())}, and **{all_outside / all_client:.0%}** "
    f"of the latency the client saw ({all_outside:,.1f} of {all_client:,.1f} ms, mean per response) "
    f"is spent outside the handler's timing: waiting in front of a busy single-process server, in the framework "
    f"before and after the middleware, and in the generator. The server's CPU averaged "
    f"**{table.loc['all', 'server_cpu']:.2f} cores** during those runs (median of the rounds)."))

# %% [markdown]
# `Server-Timing` says which part is slow; a profiler says which *code*. Here the API
# (everything on, one worker) runs under pyinstrument for one load window, and the
# functions with the most self time are listed (startup imports included, so the
# load window dominates only when it is long enough).

# %%
profile_args = ["perf", "api", "--port", "{port}", "--mode", "all", "--schema", SCHEMA, "--products", str(PRODUCTS),
                "--cache-namespace", f"{SCHEMA}:profile", "--database-url", services.database_url,
                "--redis-url", services.redis_url, f"--api-token={TOKEN}"]
with ProfiledServer(profile_args) as profiled:
    pin_process(profiled.pid, server_cores)
    await run_load(profiled.url, model=ClosedModel(users=16, duration=SECONDS * 2), scenario=scenario)
    frames = top_frames(profiled.stop(), n=8)
frames.assign(share=frames["share"].map("{:.1%}".format)).round(3)

# %% [markdown]
# ## 6 · One worker or two?
# uvicorn's `--workers 2` runs two server processes behind one socket. On this machine the
# generator needs a core too, so the second worker competes with it: measure, don't assume.
# Both run at a rate **one worker sustains** (its p99 meets the SLO; if it does not at the
# stress test's rate, the rate steps down), so the comparison is of two healthy servers,
# never of two growing queues; then 3 interleaved rounds of each.

# %%
from perf.load import LoadResult

WORKER_SECONDS = settings.pick(1.0, 5.0)


async def p99_run(server: ApiServer, rate: float) -> LoadResult:
    result, _, _ = await run_api(server, model=OpenModel(rate=rate, duration=WORKER_SECONDS), scenario=scenario,
                                 warmup=0.3)
    return result


def sustains(result: LoadResult) -> bool:
    return (all(c.met for c in check_slos(result, SLOS))
            and result.throughput >= 0.95 * (result.offered_rate or 0))


by_workers: dict[str, list[LoadResult]] = {"1 worker": [], "2 workers": []}
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:workers1"),
               workers=1) as one, \
        ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:workers2"),
                  workers=2) as two:
    worker_rate = float(report.max_sustainable or start_rate)
    for _ in range(4):  # step down until one worker sustains the rate
        if sustains(await p99_run(one, worker_rate)):
            break
        worker_rate = round(worker_rate * 0.7, 1)
    for rnd in range(MODE_ROUNDS):
        for name, server in ((("1 worker", one), ("2 workers", two)) if rnd % 2 == 0 else
                             (("2 workers", two), ("1 worker", one))):
            by_workers[name].append(await p99_run(server, worker_rate))
fig = over_time_chart({name: runs[0] for name, runs in by_workers.items()},
                      title=f"p99 latency per second at {worker_rate:,.0f} req/s (first round)", y="p99_ms")
plt.show()

# %%
p99s = {name: [r.overall().percentile(99) for r in runs] for name, runs in by_workers.items()}
one_ok = sum(sustains(r) for r in by_workers["1 worker"])
workers_verdict = compare(p99s["2 workers"], p99s["1 worker"], a="the p99 with 2 workers", b="with 1",
                          words=("lower", "higher"))
display(Markdown(
    f"At **{worker_rate:,.0f} req/s** offered, one worker sustained the rate in {one_ok} of {MODE_ROUNDS} rounds "
    f"(p99 {', '.join(f'{v * 1e3:,.1f}' for v in p99s['1 worker'])} ms); two workers: p99 "
    f"{', '.join(f'{v * 1e3:,.1f}' for v in p99s['2 workers'])} ms ({os.cpu_count()} CPUs visible; the "
    f"generator's CPU was {by_workers['2 workers'][0].client_cpu_fraction:.0%} of a core). "
    f"{str(workers_verdict)[0].upper()}{str(workers_verdict)[1:]}. "
    + ("A second worker helps when the server, not the generator, is the busy process."
       if workers_verdict.kind == "faster" else
       "Here the second worker did not lower the tail: with the generator on the same few cores it only adds "
       "contention." if workers_verdict.kind in ("slower", "same") else
       "The quick profile cannot decide whether the second worker helped: look at the full profile's rounds.")))
# > 1 when the second worker helped; only a decided verdict feeds the recommendations
worker_gain = 1 / workers_verdict.estimate if workers_verdict.decided else None

# %% [markdown]
# ## 7 · Recommendations
# Rules over those measurements (`perf.load.analysis.recommend`): each fires only when the
# evidence warrants it, most urgent first, and cites the number it rests on. The `/metrics.json`
# page supplies pool waits and the cache hit ratio; the calibration decides whether a run
# was client-bound (then only generator fixes are offered); the two-worker run above
# decides whether "add a worker" is worth saying.

# %%
for name in ("baseline", "all"):
    last = modes.run(name, MODE_ROUNDS - 1)  # its /metrics count everything since the server started
    extra = api_measurements(last.metrics)
    recs = recommend(measurements_from(modes.merged(name), calibration=ceiling,
                                       server_cpu=float(table.loc[name, "server_cpu"]), workers=1,
                                       second_worker_gain=worker_gain, **extra))
    print(f"{name}:")
    for rec in recs or ["(nothing to recommend)"]:
        print("  ", rec.describe() if not isinstance(rec, str) else rec)

# %% [markdown]
# ## 8 · Profile the framework
# Every number above went through Nexios. What does the framework itself cost per request,
# and on which routes? Three ways to answer the same request, on the same data:
#
# * **Nexios, framework default**: the framework as it ships. Every request passes two
#   middleware "bridges" (its server-error and exception handlers, built on anyio memory
#   streams like Starlette's `BaseHTTPMiddleware`), and every handler is wrapped to set a
#   context variable and resolve dependency injection.
# * **Nexios, lean**: this API's default (`nexios_lean=True`). `perf.api.app.ApiNexios`
#   skips the bridges (our own JSON error boundary does their job) and
#   `perf.api.errors.SafeRoute` calls an `async` handler directly when the route uses no
#   injection. The router, the `Request`/`Response` objects and the handlers are Nexios'.
# * **bare ASGI**: the same routes under `/bare/` (`perf.api.demo_bare`): same ASGI layers
#   (timing, body limit, compression, error boundary), same `ProductService`, cache and
#   validation; only the framework is missing.
#
# First **in process**: the app called as an ASGI function, no sockets and no HTTP
# parsing (`perf.measure.InProcessClient`, with the app's lifespan: pool, cache, queue),
# so only the framework differs. Reads come from the L1 cache; writes commit in PostgreSQL.

# %%
from perf.api.demo_framework import BARE, DEFAULT, LEAN, framework_apps, framework_costs, framework_profile

framework_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:framework")
async with framework_apps(framework_settings) as apps:
    costs = await framework_costs(apps, repeat=settings.pick(5, 15), number=settings.pick(100, 300),
                                  write_number=settings.pick(5, 15))
    profile = await framework_profile(apps, number=settings.pick(500, 2000))
costs.pivot(index="route", columns="variant", values="median_us").loc[costs.route.unique()].round(1)

# %%
bars = costs.assign(label=costs.route + " · " + costs.variant.astype(str)).set_index("label")
bars = bars[["median_us", "q1_us", "q3_us"]].rename(columns=lambda c: c.removesuffix("_us")) / 1e6
fig = charts.bar_with_spread(bars, unit="us", log=True, value_label="in-process time per request",
                             order=list(bars.index), info=info,
                             title="What the framework costs per request, route by route (in process)")
plt.show()

# %%
ratios = costs.pivot(index="route", columns="variant", values="ratio_to_bare")
reads = [r for r in ratios.index if r.startswith("GET /products")]
writes = [r for r in ratios.index if not r.startswith("GET")]
worst = ratios.loc[[*reads, *writes], LEAN].idxmax()
medians = costs.pivot(index="route", columns="variant", values="median_us")
default_x = medians[DEFAULT] / medians[LEAN]
display(Markdown(
    f"On the cached reads the lean path costs **{ratios.loc[reads, LEAN].min():.2f}x-"
    f"{ratios.loc[reads, LEAN].max():.2f}x** the bare ASGI time; the framework's default path "
    f"**{ratios.loc[reads, DEFAULT].min():.1f}x-{ratios.loc[reads, DEFAULT].max():.1f}x**. The writes take "
    f"**{medians.loc[writes, BARE].min() / 1e3:.1f}-{medians.loc[writes, BARE].max() / 1e3:.1f} ms** on the bare "
    f"path (PostgreSQL round trips) against at most **{medians.loc[reads, BARE].max():.0f} µs** for a cached "
    f"read, so there the lean path is **{ratios.loc[writes, LEAN].max():.2f}x** at most and the default "
    f"**{ratios.loc[writes, DEFAULT].max():.2f}x**. The worst product route for the lean path is "
    f"`{worst}` at **{ratios.loc[worst, LEAN]:.2f}x**. These are medians of per-round ratios to bare ASGI; "
    f"per route, the default path's median time is **{default_x.min():.1f}x-{default_x.max():.1f}x** the lean "
    f"one's (the table above has the µs)."))

# %% [markdown]
# **Where the time goes.** cProfile over the cached `GET /products/7`, own time grouped by
# package (µs per request *under the profiler*, which slows every Python call, so compare
# the columns, not the absolute values). `C` is built-in code such as `orjson.dumps`.

# %%
profile.head(8).round(1)

# %%
shares = profile.set_index("package")
framework_share = shares.loc[shares.index.isin(["nexios", "anyio"]), DEFAULT].sum() / shares[DEFAULT].sum()
lean_share = shares.loc[shares.index.isin(["nexios", "anyio"]), LEAN].sum() / shares[LEAN].sum()
display(Markdown(
    f"On the default path **{framework_share:.0%}** of the profiled time is in `nexios` and `anyio` (the bridges' "
    f"memory streams and task groups); on the lean path **{lean_share:.0%}** (its router, `Request` and `Response`). "
    f"Our own layers and service (`perf`) took **{shares.loc['perf', BARE]:.0f} µs** a request on the bare path and "
    f"**{shares.loc['perf', LEAN]:.0f} µs** on the lean one (under the profiler)."))

# %% [markdown]
# **Under load**, through uvicorn and the network stack: the same server answers the cached
# list page through Nexios and as its bare twin, and a second server runs the framework's
# default path; rounds alternate between them so machine noise hits all three alike.

# %%
PAGE = "/products?page=1"
PAGE_ROUTE = "GET /products?page=1"  # its label in the in-process table
lean_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:lean")
default_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:default",
                               nexios_lean=False)
with ApiServer(lean_settings, cpu=sorted(server_cores)) as lean_server, \
        ApiServer(default_settings, cpu=sorted(server_cores)) as default_server:
    rounds = []
    for rnd in range(settings.pick(3, 5)):
        for url, paths in ((lean_server.url, {LEAN: PAGE, BARE: "/bare" + PAGE}),
                           (default_server.url, {DEFAULT: PAGE})):
            frame = await compare_paths(url, paths, rounds=1, seconds=settings.pick(0.75, 2.0), users=16)
            rounds.append(frame.assign(round=rnd))
under_load = pd.concat(rounds, ignore_index=True)
load_summary = under_load.groupby("path")[["rps", "p50_ms"]].median().loc[[DEFAULT, LEAN, BARE]]
load_summary.round(1)

# %%
per_round = under_load.pivot(index="round", columns="path", values="rps")
lean_vs_bare = per_round[LEAN] / per_round[BARE]
lean_vs_default = per_round[LEAN] / per_round[DEFAULT]
bare_bound = load_summary.loc[BARE, "rps"] >= 0.8 * ceiling.ceiling
display(Markdown(
    f"Cached `GET {PAGE}` under load: the lean Nexios path served **{lean_vs_bare.median():.2f}x** the bare "
    f"twin's req/s (rounds {lean_vs_bare.min():.2f}x-{lean_vs_bare.max():.2f}x) and "
    f"**{lean_vs_default.median():.1f}x** "
    f"the framework's default path (rounds {lean_vs_default.min():.1f}x-{lean_vs_default.max():.1f}x). "
    + ("The bare path ran near the load generator's ceiling, so the gap to it is a lower bound. "
       if bare_bound else "None of them ran near the load generator's ceiling. ")
    + (f"In process the same route took {ratios.loc[PAGE_ROUTE, LEAN]:.2f}x the bare time, which alone would "
       f"allow {1 / ratios.loc[PAGE_ROUTE, LEAN]:.2f}x the req/s: "
       + ("under load the gap is smaller, since uvicorn's HTTP parsing and the socket work cost the same on "
          "all three paths." if lean_vs_bare.median() > 1 / ratios.loc[PAGE_ROUTE, LEAN]
          else "under load the gap is no smaller."))))

# %% [markdown]
# ## 9 · As a CI gate
# The same run from a shell fails the build when an SLO is missed (exit status 1; bad
# SLO strings exit 2 with the grammar):
#
# ```bash
# python -m perf load http://127.0.0.1:8000 --scenario perf.load.product:READS \
#     --rate 400 --duration 20s --slo "p99<50ms" --slo "errors<0.1%"
# ```

# %%
# NBVAL_CHECK_OUTPUT
for check in check_slos(modes.merged("all"), ["errors<100%", "rps>0"]):
    print(check.slo.text, "met" if check.met else "MISSED")

# %% [markdown]
# ## 10 · Background work: the syllabus' queue, the corrected one, the durable one
# The syllabus' `TaskQueue` (reproduced as written in `perf.queue.naive`) puts uploads on a
# bounded `asyncio.Queue`, and its `/upload` handler does `await task_queue.add_task(...)`.
# Three failure modes, each measured: (1) when the queue is full the handler **waits** for a
# slot instead of answering; (2) its `stop()` sets `running = False` and then waits on
# `queue.join()`, but its workers leave their loop after their current task, so queued tasks
# never run and `stop()` never returns; (3) everything lives in the process, so a crash loses
# every task it had accepted. First a full queue (1 worker, 4 slots, 0.2 s tasks) and six
# concurrent uploads, the seed's handler against `perf.queue.TaskQueue.submit` (429 + `Retry-After`):

# %%
import asyncio

from perf.queue.demo_backpressure import full_queue_requests, shutdown_drain
from perf.queue.demo_crash import crash_experiment

full = pd.concat([await full_queue_requests(kind, requests=6, workers=1, max_size=4, task_seconds=0.2)
                  for kind in ("naive", "corrected")], ignore_index=True)
stops = {r.queue: r for r in [await shutdown_drain(kind, tasks=8, workers=2, task_seconds=0.05, timeout=2.0)
                              for kind in ("naive", "corrected")]}
seed_crash = await asyncio.to_thread(crash_experiment, "naive", services.database_url, tasks=30, delay=0.05,
                                     schema=f"{SCHEMA}_crash")
full.round(3)

# %%
by_kind = full.groupby("queue")["seconds"]
naive_stop, fixed_stop = stops["naive"], stops["corrected"]
display(Markdown(
    f"With the queue full, the seed's handler answered its six uploads "
    f"`{sorted(set(full.loc[full.queue == 'naive', 'status']))}` "
    f"after **{by_kind.min()['naive'] * 1e3:,.0f} to {by_kind.max()['naive'] * 1e3:,.0f} ms**: each request "
    f"waited for a worker to free a slot, so the client's wait grows with the backlog (a client timeout shorter "
    f"than that turns it into an error, after the work was queued anyway). The corrected queue answered "
    f"`{sorted(set(full.loc[full.queue == 'corrected', 'status']))}` with `Retry-After: "
    f"{full.loc[full.queue == 'corrected', 'retry_after'].iloc[0]}` in at most "
    f"**{by_kind.max()['corrected'] * 1e3:,.1f} ms** "
    f"({by_kind.max()['naive'] / by_kind.max()['corrected']:,.0f}x less than the seed's slowest answer). "
    f"On shutdown with {naive_stop.accepted} tasks accepted, the seed's `stop()` "
    + ("**had not returned** " if not naive_stop.returned else "returned ")
    + f"after {naive_stop.seconds:.1f} s and {naive_stop.completed} of {naive_stop.accepted} tasks had run; the "
    f"corrected `stop()` " + ("drained" if fixed_stop.returned else "did not drain")
    + f" {fixed_stop.completed} of {fixed_stop.accepted} in {fixed_stop.seconds:.2f} s. And a SIGKILL of a "
    f"worker running the seed's queue right after it acknowledged {seed_crash.accepted} uploads: "
    f"**{seed_crash.completed} completed, {seed_crash.lost} lost**."))

# %% [markdown]
# The corrected queue still keeps its tasks in memory. The durable queue
# (`perf.queue.durable.DurableQueue`, on pgqueuer) commits each task to PostgreSQL before the
# 202, so another worker picks it up after a crash. Side by side (the measurements of
# `python -m perf.bench.queue`, small sizes): the latency of one enqueue (what a `POST /uploads`
# waits before its 202), throughput with 8 concurrent submitters and a no-op task, and the crash
# experiment (a worker acknowledges tasks one by one and is SIGKILLed; how many ever complete).

# %%
from perf.queue.demo_compare import compare_queues

queues = await compare_queues(services.database_url, rounds=settings.pick(2, 5),
                              latency_tasks=settings.pick(100, 1000), throughput_tasks=settings.pick(400, 8000),
                              crash_tasks=settings.pick(30, 200))
queues.round(3)

# %%
mem, dur = queues.loc["memory"], queues.loc["durable"]
display(Markdown(
    f"An enqueue took **{mem.p50_ms * 1e3:,.0f} µs** (p50; p99 {mem.p99_ms * 1e3:,.0f} µs) in process and "
    f"**{dur.p50_ms:,.2f} ms** (p99 {dur.p99_ms:,.2f} ms) durable, a commit to PostgreSQL: "
    f"**{dur.p50_ms / mem.p50_ms:,.0f}x** at the median "
    f"(rounds ranged {dur.p50_ms_min:,.2f}-{dur.p50_ms_max:,.2f} ms). "
    f"Throughput: {mem.tasks_per_s:,.0f} tasks/s in process, {dur.tasks_per_s:,.0f} durable "
    f"({mem.tasks_per_s / dur.tasks_per_s:,.0f}x fewer), {queues.loc['durable~', 'tasks_per_s']:,.0f} with the "
    f"approximate depth limit. What the commit buys: after the SIGKILL the in-process queue completed "
    f"**{mem.completed:.0f} of {mem.accepted:.0f}** accepted tasks, the durable one **{dur.completed:.0f} of "
    f"{dur.accepted:.0f}** (a fresh consumer took them over within {dur.recovery_s:.1f} s, the lease included)."))

# %% [markdown]
# ## 11 · Load balancing: workers
# The syllabus starts its server with `uvicorn.run(app, host="0.0.0.0", port=8000, workers=4)`.
# Here is that line, with a trivial app object, in a subprocess:

# %%
from perf.lab.workers import compare_workers, run_app_object_workers

seed_run = run_app_object_workers(workers=4)
print("exit status:", seed_run.returncode)
print(seed_run.output)

# %% [markdown]
# uvicorn needs an **import string** (`"perf.api.app:create_app"`-style, or `uvicorn module:app
# --workers 4`) because every worker is a new process that imports the app itself; an app
# object cannot be sent to it. `ApiServer(settings, workers=N)` starts `python -m perf api
# --workers N`, which passes an import string. The workers share one listening socket and the
# kernel hands each new **connection** to whichever worker accepts it first; a keep-alive
# connection then stays on its worker. Below: 1 vs 2 workers on `GET /openapi.json`, which builds
# the whole OpenAPI document on every request (CPU only: no database, no cache), a concurrency
# sweep per worker count, interleaved rounds, and the requests each worker served (`/metrics.json`
# answers with its worker's `pid` and count).

# %%
balance = await compare_workers(ApiSettings(**api, mode="all", products=PRODUCTS,
                                            cache_namespace=f"{SCHEMA}:balance"),
                                workers=(1, 2), users=settings.pick([4, 32], [4, 16, 64, 128]),
                                duration=settings.pick(0.75, 3.0), warmup=settings.pick(0.3, 1.0),
                                rounds=settings.pick(2, 3))
levels = balance.levels.groupby(["workers", "users"])["rps"].agg(["median", "min", "max"])
levels.round(0)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for count, rows in levels.groupby(level="workers"):
    users = rows.index.get_level_values("users")
    ax.errorbar(users, rows["median"], yerr=[rows["median"] - rows["min"], rows["max"] - rows["median"]],
                marker="o", capsize=3, label=f"{count} worker{'s' if count > 1 else ''}")
ax.set(xscale="log", xlabel="concurrent users", ylabel="requests/s (median, min-max)",
       title=f"GET {balance.path}: 1 vs 2 workers ({info['cpus']} CPUs)")
ax.legend()
plt.show()

# %%
round_peaks = balance.levels.groupby(["workers", "round"])["rps"].max().groupby("workers")
peaks, lows, highs = round_peaks.median(), round_peaks.min(), round_peaks.max()
gain = peaks[2] / peaks[1]
two = balance.spread[balance.spread["workers"] == 2]
cores = balance.cpu.groupby("workers")[["server_cores", "generator_cores"]].median()
display(Markdown(
    f"Peak throughput (best level of each round, median over rounds): **{peaks[1]:,.0f} req/s** with one worker, "
    f"**{peaks[2]:,.0f} req/s** with two ({gain:.2f}x). "
    f"The server's workers used **{cores.loc[1, 'server_cores']:.2f}** "
    f"cores with one worker and **{cores.loc[2, 'server_cores']:.2f}** with two, the generator "
    f"{cores.loc[2, 'generator_cores']:.2f}. The two workers served "
    f"{two['share'].min():.0%}-{two['share'].max():.0%} of the requests each (per worker and round), balanced by "
    f"connection, not by request. This machine has **{os.cpu_count()} CPUs** shared by the generator, PostgreSQL, "
    f"Redis and the server, so a second worker can at most take the core the generator and the other processes leave "
    + ("free, and here it did raise the peak (every round with two beat every round with one)."
       if lows[2] > highs[1] else "free; here the rounds overlapped, so no gain beyond the noise was shown.")
    + (f" One worker kept only {cores.loc[1, 'server_cores']:.2f} of a core busy: other processes on this "
       "machine limited the run as much as the worker count did." if cores.loc[1, "server_cores"] < 0.9 else "")
    + " What it cannot show is scaling: on a machine with more cores than worker processes + generator, a "
    "CPU-bound route should scale close to linearly with workers until the cores run out (then extra workers only "
    "add context switches), and on any machine a worker count above the core count is a loss. Measure with the "
    "generator on its own machine before choosing `--workers`."))

# %% [markdown]
# ## 12 · Memory over a sustained run
# Throughput and latency say nothing about a worker that slowly eats memory until the
# kernel kills it. Here the product scenario (lists, items, writes) runs against the API with
# every optimisation on, for a sustained period, while a thread samples the RSS of the
# server's processes by pid (psutil) every 0.5 s. The workers' L1 caches start empty and fill
# with the pages the scenario reads; the L1 is bounded (10,000 entries per worker, 30 s per
# entry), so a cache filling up should level off, whereas a leak keeps the same slope to the end.

# %%
from perf.load.demo_rss import rss_under_load

RSS_SECONDS = settings.pick(10.0, 60.0)
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:rss"),
               workers=2, cpu=sorted(server_cores)) as server:
    rss_run = await rss_under_load(server, scenario=product_scenario(products=PRODUCTS, categories=20,
                                                                     token=server.token),
                                   duration=RSS_SECONDS, users=16, interval=0.5)
assert rss_run.result.error_rate == 0 and rss_run.requests > 0

fig, ax = plt.subplots(figsize=(7, 3.5))
for pid, rows in rss_run.samples[rss_run.samples["role"] == "worker"].groupby("pid"):
    ax.plot(rows["t"], rows["rss_mib"], marker=".", label=f"worker {pid}")
ax.set(xlabel="seconds into the run", ylabel="RSS (MiB)", ylim=(0, None),
       title=f"API worker RSS under the product scenario ({rss_run.requests:,} requests)")
ax.legend()
plt.show()

# %%
workers_seen = int(rss_run.total["workers"].max())
verdicts = {
    "flat": "**flat**: no leak, and nothing left to fill",
    "levelled off": "**grew, then levelled off**: the caches filled to what the scenario reads, then stopped",
    "growing": "**still growing at the end**",
}
display(Markdown(
    f"Over {RSS_SECONDS:.0f} s and **{rss_run.requests:,} requests** the {workers_seen} workers together started at "
    f"**{rss_run.start_mib:.1f} MiB** of RSS, ended at **{rss_run.end_mib:.1f} MiB** and peaked at "
    f"**{rss_run.peak_mib:.1f} MiB**: a slope of **{rss_run.slope_mib_per_10k:+.2f} MiB per 10,000 requests** "
    f"over the whole run, {rss_run.early_slope_mib_per_10k:+.2f} over its first half and "
    f"{rss_run.late_slope_mib_per_10k:+.2f} over its second. RSS was {verdicts[rss_run.trend]}. "
    + ("A slope that stays the same to the end is the signature of a leak; before calling it one, check that "
       "the run was long enough for the L1 to reach its bound (each worker's L1 holds at most 10,000 entries, "
       f"here at most the {PRODUCTS:,} products and the list pages the scenario reads, at about 1 KB each), "
       "and run it longer (`PERF_PROFILE=full`): a bounded cache flattens, a leak does not."
       if rss_run.trend == "growing" else
       (f"The {rss_run.growth_mib:.1f} MiB it grew is of the order of what the L1s fill with: "
        f"{workers_seen} workers x {PRODUCTS:,} products at ~1 KB each is {workers_seen * PRODUCTS / 1024:.1f} "
        "MiB, plus the list pages. " if rss_run.trend == "levelled off" else "")
       + "Bounded caches, pools of fixed size and no per-request state kept: the memory a worker needs is set "
       "in its first seconds, and a longer run (`PERF_PROFILE=full`) shows the same line.")))

# %% [markdown]
# ## 13 · Beyond one machine: the same scenario on Locust's distributed engine
# One Python generator process tops out at one core. Past that, `perf load --engine locust
# --workers N` runs the same `Scenario` on a Locust master and N workers (local processes
# here; other machines with `perf load-worker --master HOST:PORT`), while every request is
# still recorded in `perf.load`'s HDR histograms and merged like `--processes`. We run the
# read mix (`perf.load.product:READS`, no token needed) through the built-in engine and
# through Locust with 1 and 2 workers, same users and duration, against the API on its core.

# %%
from perf.load.locust.compare import compare_engines

with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:engines"),
               cpu=sorted(server_cores)) as server:
    engines = compare_engines(server.url, scenario="perf.load.product:READS", users=16,
                              duration=settings.pick(2.0, 10.0), locust_workers=(1, 2))
engines.round(1)

# %%
builtin_row = engines.loc[("builtin", 1)]
locust_rows = engines.loc["locust"]
best_locust = locust_rows["rps"].max()
display(Markdown(
    f"The built-in engine sent **{builtin_row['rps']:,.0f} req/s** at **{builtin_row['cpu_us_per_request']:.0f} µs** "
    f"of generator CPU per request; Locust with 1 worker {locust_rows.loc[1, 'rps']:,.0f} req/s at "
    f"{locust_rows.loc[1, 'cpu_us_per_request']:.0f} µs "
    f"({locust_rows.loc[1, 'cpu_us_per_request'] / builtin_row['cpu_us_per_request']:.1f}x the CPU per request), "
    f"with 2 workers {locust_rows.loc[2, 'rps']:,.0f} req/s. "
    + ("On this machine a second Locust worker did not add throughput: both share the generator's one core "
       "(and the server has the other). "
       if locust_rows.loc[2, "rps"] <= locust_rows.loc[1, "rps"] * 1.1 else
       "A second Locust worker added throughput here. ")
    + ("The built-in engine is the cheaper generator per request, so on one machine it is the right tool; "
       if builtin_row["cpu_us_per_request"] < locust_rows["cpu_us_per_request"].min() else
       "Locust was as cheap per request here as the built-in engine; ")
    + "Locust earns its cost when the load needs more cores than one machine has: each worker machine "
      "adds its cores, and the percentiles stay exact because the histograms are merged, never averaged."))

# %% [markdown]
# ## 14 · What the server saw: its own `/metrics` during the load
# Operators do not run a load generator against production; they read what the server
# reports. The API exposes Prometheus metrics at `/metrics` (loopback clients, or others
# with the token): per route template and status a request counter and a latency
# histogram (0.1 ms to 10 s buckets), requests in flight, cache hits by level, pool,
# queue and service availability. With two workers, prometheus_client's multiprocess mode
# sums every worker's files, so one scrape describes the whole server, not the worker
# the kernel happened to pick. Here the API (everything on, two workers on the server's
# core) takes the same open load several times, after one unmeasured run; `/metrics` is scraped
# before and after each, and the server's p50/p99 per route come from the histogram's **bucket deltas**,
# exact only to the bucket (its bounds are shown). Beside them the generator's: from the
# scheduled send (what a user waited) and from the actual send.

# %%
from perf.lab.server_metrics import server_vs_client, stepped_scrapes

METRIC_ROUNDS = settings.pick(3, 5)
METRIC_SECONDS = settings.pick(0.5, 2.0)  # each measured run, and each step below
metric_rate = max(round((report.max_sustainable or start_rate) / 2), 10)
offered = [(metric_rate * f, METRIC_SECONDS) for f in (0.25, 0.5, 1.0)]
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:metrics"),
               workers=2, cpu=sorted(server_cores)) as server:
    seen = await server_vs_client(server, scenario=scenario, rounds=METRIC_ROUNDS, warmup=settings.pick(0.5, 1.0),
                                  model=OpenModel(rate=metric_rate, duration=METRIC_SECONDS))
    scraped, stepped = await stepped_scrapes(server, scenario=scenario, interval=0.25, steps=offered)
seen.summary().round(2)

# %%
display(Markdown(f"At {metric_rate:,} req/s offered, {seen.n_rounds} rounds of {METRIC_SECONDS:g} s. "
                 + seen.describe()))

# %% [markdown]
# The same scrapes, taken every 0.25 s through a stepped load (a quarter, half, then all of
# that rate), are what a dashboard draws: the server's own request rate and percentiles per
# scrape interval, computed from counter and bucket deltas.

# %%
scraped_long = pd.concat([scraped.assign(series=f"server {p}", ms=scraped[f"{p}_ms"]) for p in ("p50", "p99")],
                         ignore_index=True).dropna(subset=["ms"])
fig = charts.line_over(scraped_long, x="t", y="ms", hue="series", logy=True, info=info,
                       title="The server's own p50/p99 per scrape (0.25 s) through a stepped load",
                       xlabel="seconds into the run", ylabel="latency (ms, from /metrics buckets)")
plt.show()

# %%
fig = charts.line_over(scraped.assign(series="requests/s the server counted"), x="t", y="rps", hue="series",
                       info=info, title="Requests per second counted by /metrics, offered "
                       + " → ".join(f"{r:,.0f}" for r, _ in offered) + " req/s",
                       xlabel="seconds into the run", ylabel="requests/s")
plt.show()

# %% [markdown]
# **Take-aways.** Calibrate the generator first (httpx measures itself); use an open model
# for latency under load, or coordinated omission hides every stall; merge histograms,
# never average percentiles; and read `Server-Timing` before optimising: it says whether
# the next millisecond lives in the database, the cache, the framework or the network.

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it puts a real
# server under real load with `perf.load` and answers with what passed, what failed and a
# hint. Reference solutions are in `notebooks/solutions/`; try first.

# %% tags=["plumbing"]
from perf import exercises

# %% [markdown]
# ### Exercise 05.slo: an SLO gate that fails the slow build and passes the fast one
# A "baseline" build answers in 100 ms, an "optimised" one at once. Write `SLOS` (strings
# like `"p99<50ms"`, `"errors<0.1%"`) with a latency percentile and an error budget, so the
# gate fails the baseline and passes the optimised build. The starter passes both.

# %%
# EXERCISE 05.slo: edit this cell, then run the check below
SLOS = ["p99<1s"]

# %%
await exercises.check("05.slo", SLOS)

# %% [markdown]
# ### Exercise 05.error_rate: an error rate that counts every scheduled request
# Write `error_rate(result)` for a `LoadResult`. The check runs one load where every
# request times out and one where none does. The starter is the usual mistake.

# %%
# EXERCISE 05.error_rate: edit this cell, then run the check below
def error_rate(result):
    return result.failed / max(result.responses, 1)

# %%
await exercises.check("05.error_rate", error_rate)

# %%
exercises.progress()

# %% tags=["plumbing"]
cache = redis.from_url(services.redis_url)
async for key in cache.scan_iter(match=f"{SCHEMA}:*", count=500):
    await cache.delete(key)
await cache.aclose()
os.sched_setaffinity(0, original_affinity)
services.close()

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/05_api/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("05_api")
