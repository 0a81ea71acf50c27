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

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd
import redis.asyncio as redis
from IPython.display import Markdown, display

from perf import charts
from perf.api.server import ApiServer
from perf.api.settings import ApiSettings, new_token
from perf.config import get_settings
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
from perf.load.demo_modes import compare_modes, run_api
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
ROUNDS = settings.pick(1, 2)
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
    drivers = await compare_drivers(bare.url, rounds=ROUNDS, seconds=settings.pick(1.0, 3.0), cpu=generator_cores)
fig = charts.bar_with_spread(summarize(drivers, by="driver", value="rps"), unit="", value_label="requests/s",
                             title="Load generators against the same bare ASGI server", info=info)
plt.show()

# %%
rps = drivers.groupby("driver")["rps"].median()
vs_httpx = driver_ratios(drivers, "builtin", "httpx")
text = (f"The built-in driver reached **{rps['builtin']:,.0f} req/s**, httpx **{rps['httpx']:,.0f} req/s** "
        f"(**{vs_httpx:.0f}x** less, round-by-round median): httpx spends most of each request in its own "
        "Python layers, so a server faster than ~100-300 req/s measured with it is really measuring httpx.")
if "wrk" in rps:
    text += (f" wrk reached **{rps['wrk']:,.0f} req/s**; the built-in driver ran at "
             f"**{driver_ratios(drivers, 'builtin', 'wrk'):.2f}x** of it.")
else:
    text += f" wrk was not measured: {drivers.attrs['skipped']['wrk']}."
display(Markdown(text))

# %% [markdown]
# ## 2 · Baseline vs each optimisation
# The API has six switches (`perf.api.settings.ApiMode`): `cache`, `pool`, `keyset`,
# `compression`, `join` and `fastpath` (a cached `GET /products/{id}` answered below Nexios,
# only with `cache` on, so it is measured as part of `all`, not on its own). The baseline is the seed's
# design: every read goes to PostgreSQL, a new connection per request, OFFSET pages, no
# compression and N+1 queries for the detail page. Then one switch on at a time, then
# all of them. Each mode is its own server process (same data, its own cache namespace),
# warmed up, then measured with 16 concurrent users on this traffic mix:

# %%
# NBVAL_CHECK_OUTPUT
scenario = product_scenario(products=PRODUCTS, categories=20, token=TOKEN)
print(scenario)

# %%
MODES = ["baseline", "baseline,+cache", "baseline,+pool", "baseline,+keyset", "baseline,+compression",
         "baseline,+join", "all"]
modes = await compare_modes(MODES, **api, cpu=sorted(server_cores), products=PRODUCTS, scenario=scenario,
                            model=ClosedModel(users=16, duration=SECONDS), rounds=ROUNDS,
                            warmup=settings.pick(0.3, 1.0))
table = modes.table()
table.round(2)

# %%
fig = charts.bar_with_spread(summarize(modes.speedups(), by="mode", value="speedup"), unit="",
                             value_label="throughput vs baseline (x)", log=True,
                             title="Each optimisation's contribution (req/s relative to the seed-style baseline)",
                             info=info)
plt.show()

# %%
from perf.measure import describe_combination

single = table.drop(index=["baseline", "all"])["speedup"]
best = single.idxmax()
display(Markdown(
    f"The baseline served **{table.loc['baseline', 'rps']:,.0f} req/s** "
    f"(p50 {table.loc['baseline', 'p50_ms']:,.0f} ms); "
    f"everything on served **{table.loc['all', 'rps']:,.0f} req/s** (p50 {table.loc['all', 'p50_ms']:,.1f} ms), "
    f"**{table.loc['all', 'speedup']:,.0f}x** the throughput. On its own, the biggest single switch is "
    f"`{best.split(',+')[-1]}` (**{single[best]:,.1f}x**); the smallest is `{single.idxmin().split(',+')[-1]}` "
    f"(**{single.min():,.2f}x**). Against the single switches (`all` also turns on `fastpath`), "
    f"{describe_combination(dict(single), float(table.loc['all', 'speedup']))}. "
    f"`keyset` changes only pages requested with `?after=`, so where the mix pages by number its bar shows "
    f"the noise level of the run."))

# %%
fig = spectrum_chart({"baseline": modes.result("baseline"), "all": modes.result("all")},
                     title="Latency by percentile: baseline vs everything on")
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
# within 10%, and repeats that step to show its spread. Before trusting the steps,
# calibrate the generator against the API's own trivial endpoint.

# %%
SLOS = ["p99<200ms", "errors<1%"]
start_rate = max(round(swept.peak_rps / 4), 5)
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:stress"),
               cpu=sorted(server_cores)) as server:
    ceiling = await calibrate(server.url, path="/bare/hello", duration=settings.pick(1.0, 2.0))
    rates = rate_steps(start_rate, factor=1.5, max_steps=settings.pick(8, 12))
    report = await stress(server.url, rates=rates, step_seconds=settings.pick(1.0, 3.0), slos=SLOS,
                          scenario=scenario, connections=64, timeout=2.0, repeats=settings.pick(1, 3),
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
       if sustained else "No step met the SLO: lower the start rate.")))

# %% [markdown]
# ## 5 · Where does the time go?
# Every response carries `Server-Timing: db;dur=…, cache;dur=…, app;dur=…, total;dur=…`.
# Averaged per endpoint and set against the latency the client saw, it splits a request
# into database, cache, framework + handler (`app`) and everything outside the server
# (network, kernel, queueing in front of the server and in the generator).

# %%
breakdowns = pd.concat({m: time_breakdown(modes.result(m)) for m in ("baseline", "all")}, names=["mode", "endpoint"])
breakdowns.round(3)

# %%
shares = pd.DataFrame({m: server_shares(modes.result(m)) for m in ("baseline", "all")}).fillna(0.0)
base_db = shares.loc["db", "baseline"] if "db" in shares.index else 0.0
all_outside = time_breakdown(modes.result("all"))["outside_server_ms"].mean()
all_client = time_breakdown(modes.result("all"))["client_ms"].mean()
display(Markdown(
    f"In the baseline the database takes **{base_db:.0%}** of server time (a connection per request and N+1 "
    f"queries). With everything on, the server's parts are "
    f"{', '.join(f'{k} {v:.0%}' for k, v in shares['all'].items())}, and **{all_outside / all_client:.0%}** "
    f"of the latency the client saw ({all_outside:,.1f} of {all_client:,.1f} ms) "
    f"is spent outside the handler's timing: waiting in front of a busy single-process server, in the framework "
    f"before and after the middleware, and in the generator. The server's CPU averaged "
    f"**{modes.run('all').server_cpu:.2f} cores** during that run."))

# %% [markdown]
# `Server-Timing` says which part is slow; a profiler says which *code*. Here the API
# (everything on, one worker) runs under pyinstrument for one load window, and the
# functions with the most self time are listed (startup imports included, so the
# load window dominates only when it is long enough).

# %%
profile_args = ["perf", "api", "--port", "{port}", "--mode", "all", "--schema", SCHEMA, "--products", str(PRODUCTS),
                "--cache-namespace", f"{SCHEMA}:profile", "--database-url", services.database_url,
                "--redis-url", services.redis_url, "--api-token", TOKEN]
with ProfiledServer(profile_args) as profiled:
    pin_process(profiled.pid, server_cores)
    await run_load(profiled.url, model=ClosedModel(users=16, duration=SECONDS * 2), scenario=scenario)
    frames = top_frames(profiled.stop(), n=8)
frames.assign(share=frames["share"].map("{:.1%}".format)).round(3)

# %% [markdown]
# ## 6 · One worker or two?
# uvicorn's `--workers 2` runs two server processes behind one socket. On this machine the
# generator needs a core too, so the second worker competes with it: measure, don't assume.

# %%
by_workers = {}
for workers in (1, 2):
    with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:workers{workers}"),
                   workers=workers) as server:
        by_workers[f"{workers} worker{'s' if workers > 1 else ''}"], _, _ = await run_api(
            server, model=OpenModel(rate=report.max_sustainable or start_rate, duration=SECONDS * 2), scenario=scenario,
            warmup=0.3)
fig = over_time_chart(by_workers, title="p99 latency per second at the max sustainable rate", y="p99_ms")
plt.show()

# %%
w1, w2 = by_workers["1 worker"], by_workers["2 workers"]
display(Markdown(
    f"At {w1.offered_rate:,.0f} req/s offered: 1 worker p99 **{w1.overall().percentile(99) * 1e3:,.1f} ms**, "
    f"2 workers p99 **{w2.overall().percentile(99) * 1e3:,.1f} ms** ({os.cpu_count()} CPUs visible; "
    f"the generator's CPU was {w2.client_cpu_fraction:.0%} of a core). "
    + ("A second worker helps when the server, not the generator, is the busy process."
       if w2.overall().percentile(99) < w1.overall().percentile(99) else
       "Here the second worker did not help: with the generator on the same few cores it only adds contention.")))
worker_gain = w1.overall().percentile(99) / w2.overall().percentile(99)  # > 1: the second worker helped

# %% [markdown]
# ## 7 · Recommendations
# Rules over those measurements (`perf.load.analysis.recommend`): each fires only when the
# evidence warrants it, most urgent first, and cites the number it rests on. The `/metrics`
# page supplies pool waits and the cache hit ratio; the calibration decides whether a run
# was client-bound (then only generator fixes are offered); the two-worker run above
# decides whether "add a worker" is worth saying.

# %%
for name in ("baseline", "all"):
    run = modes.run(name)
    extra = api_measurements(run.metrics)
    recs = recommend(measurements_from(run.result, calibration=ceiling, server_cpu=run.server_cpu, workers=1,
                                       second_worker_gain=worker_gain, **extra))
    print(f"{name}:")
    for rec in recs or ["(nothing to recommend)"]:
        print("  ", rec.describe() if not isinstance(rec, str) else rec)

# %% [markdown]
# ## 8 · The Nexios framework tax
# The same server answers `GET /hello` through Nexios (routing, request and response
# objects, middleware) and `GET /bare/hello` with two raw ASGI messages in front of it.
# The difference is what the framework costs per request.

# %%
with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:tax"),
               cpu=sorted(server_cores)) as server:
    tax = await compare_paths(server.url, {"bare ASGI": "/bare/hello", "Nexios": "/hello"},
                              rounds=settings.pick(2, 4), seconds=settings.pick(0.75, 2.0), users=16)
summary = tax.groupby("path")[["rps", "p50_ms"]].median()
summary.round(1)

# %%
per_request_us = (1 / summary.loc["Nexios", "rps"] - 1 / summary.loc["bare ASGI", "rps"]) * 1e6
bare_bound = summary.loc["bare ASGI", "rps"] >= 0.8 * ceiling.ceiling
display(Markdown(
    f"Nexios served **{summary.loc['Nexios', 'rps']:,.0f} req/s**, the bare ASGI path "
    f"**{summary.loc['bare ASGI', 'rps']:,.0f} req/s**: about **{per_request_us:,.0f} µs** of framework per request "
    f"at this concurrency. "
    + ("The bare path ran near the generator's ceiling, so this is a lower bound on the tax."
       if bare_bound else "Neither ran near the generator's ceiling.")))

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
for check in check_slos(modes.result("all"), ["errors<100%", "rps>0"]):
    print(check.slo.text, "met" if check.met else "MISSED")

# %% [markdown]
# **Take-aways.** Calibrate the generator first (httpx measures itself); use an open model
# for latency under load, or coordinated omission hides every stall; merge histograms,
# never average percentiles; and read `Server-Timing` before optimising: it says whether
# the next millisecond lives in the database, the cache, the framework or the network.

# %%
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
