# %% [markdown]
# # 05 · The product API: each optimisation measured, and where the time goes
#
# Notebooks 01-04 measured each technique on its own. Here the whole product API
# (`perf.api`, Nexios under uvicorn) runs as a real server process and `perf.load`
# puts it under load: first the code being measured, then the seed-style baseline against
# each optimisation switched on in turn, where the time goes (Server-Timing, a profile and its
# flame graph), one worker or two, memory over a sustained run, and recommendations drawn
# from those measurements, last.
#
# More sittings follow: **06** is background work (the syllabus' task queue, the corrected
# one, the durable one), **07** load testing at scale (calibrating generators, the
# concurrency sweep, the stress ramp, an SLO gate for CI, Locust, the server's own `/metrics`),
# **08** the cache among many processes, and **09** what the framework itself costs.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. The profile is read once, when the kernel starts: to switch, start JupyterLab as
# `PERF_PROFILE=full python3 tasks.py lab` (or `quick`) and restart the kernel. How long this
# notebook took in this run is printed by its last cell.

# %% tags=["plumbing"]
import os
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from perf import charts, exercises
from perf.api import ApiServer, ApiSettings, new_token
from perf.config import get_settings
from perf.lab import cleanup, compare_modes, show_source
from perf.load import (
    ClosedModel,
    ProfiledServer,
    api_measurements,
    calibrate,
    measurements_from,
    product_scenario,
    recommend,
    run_load,
    server_shares,
    spectrum_chart,
    time_breakdown,
    top_frames,
)
from perf.measure import machine_info, readable, summarize
from perf.runs import current_run, replay_note, replayable, replayable_sync
from perf.services import current_affinity, ensure_services, pin_process, split_cores, start_together

current_run()  # this notebook's run: every chart below is recorded into it
notebook_started = time.perf_counter()
settings = get_settings()
services = ensure_services(settings)
info = machine_info()
SCHEMA = "nb05_api"  # this notebook's PostgreSQL schema and Redis key prefix
PRODUCTS = settings.pick(2_000, 20_000)
SECONDS = settings.pick(1.0, 5.0)  # length of each measured run
MODE_ROUNDS = 3  # a verdict needs >= 3 interleaved rounds: the quick profile makes each one shorter
MODE_SECONDS = settings.pick(0.5, 5.0)
server_cores, generator_cores = split_cores()
original_affinity = current_affinity()  # None where the platform cannot pin
pin_process(os.getpid(), generator_cores)  # the generator (this kernel) stays off the server's cores
TOKEN = new_token()  # the write token every API server here gets, and the scenario's writes send
api = dict(database_url=services.database_url, redis_url=services.redis_url, schema=SCHEMA, api_token=TOKEN)
print("profile:", settings.profile, "| server cores", sorted(server_cores),
      "| generator cores", sorted(generator_cores))
if replayed := replay_note():  # PERF_REPLAY=<run id>: every measuring step below returns that run's result
    display(Markdown(f"**{replayed}**"))

# %% [markdown]
# ## 1 · The code being measured
# Everything below times these functions, read here from `perf` itself. A product read is a
# Nexios route that parses the id and asks the service; the service wraps its SQL in a cache
# call keyed and tagged by the product, so a write can invalidate exactly what it changed:

# %%
from perf.api import ProductService, api_layers, get_product

show_source(get_product, ProductService.get)

# %% [markdown]
# Around the router sit the API's own pure ASGI layers, innermost first: each request passes the
# error boundary, then timing (which writes `Server-Timing`), the body limit and compression, on
# its way to Nexios (`python3 tasks.py bench api` prints what each costs in process).

# %%
show_source(api_layers)

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
# (notebook 09 measures what that path costs). Each
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
modes = await replayable("modes", lambda: compare_modes(
    MODES, **api, cpu=sorted(server_cores), products=PRODUCTS, scenario=scenario,
    model=ClosedModel(users=16, duration=MODE_SECONDS), rounds=MODE_ROUNDS, warmup=settings.pick(0.3, 1.0),
    keep_servers=True))
table = modes.table()
readable(table)

# %%
fig = charts.bar_with_spread(summarize(modes.speedups(), by="mode", value="speedup"), unit="",
                             value_label="throughput vs baseline (x)",
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
wire_rounds = modes.rounds("bytes_per_response")
wire_verdict = compare(wire_rounds["baseline,+compression"], wire_rounds["baseline"],
                       a="a response body with `compression`", b="one in the baseline", words=("smaller", "larger"))
hits = modes.rounds("hit_ratio")
hit_verdict = (compare(hits["baseline"], hits["all"], a="the baseline's hit ratio", b="everything on's",
                       larger_is_better=True, words=("higher", "lower"))
               if (hits[["baseline", "all"]] > 0).all().all() else None)
display(Markdown(
    f"The syllabus' design (baseline) served **{table.loc['baseline', 'rps']:,.0f} req/s** "
    f"(p50 {table.loc['baseline', 'p50_ms']:,.1f} ms), everything on **{table.loc['all', 'rps']:,.0f} req/s** "
    f"(p50 {table.loc['all', 'p50_ms']:,.1f} ms), the naive design **{table.loc['naive', 'rps']:,.0f} req/s** "
    f"(medians of {len(rps)} interleaved rounds of {MODE_SECONDS:g} s). In throughput, {everything}; "
    f"{naive}.\n\n"
    + "".join(f"(Round {rnd + 1} is left out of every figure here: `{mode}` got no response in its "
              f"{MODE_SECONDS:g} s, a stalled server or a core taken by something else, so that round puts "
              "nothing beside the other modes.)\n\n" for rnd, mode in modes.unanswered())
    + "Each switch alone against the baseline:\n\n"
    + "\n".join(f"- {verdict}" for verdict in alone.values())
    + f"\n\nRanked by throughput, {ranking}. (`keyset` changes only the `list_after` pages, "
    f"{scenario.shares()['list_after']:.0%} of the mix.) Against the single switches, {together}.\n\n"
    + ("" if all(v.decided for v in (everything, ranking, together, *alone.values())) else
       f"Where a line says *inconclusive*, {len(rps)} rounds of {MODE_SECONDS:g} s on this machine cannot "
       "decide it: the full profile (`PERF_PROFILE=full`, rounds of 5 s) and this section's chart of per-round "
       "speedups are where to look.\n\n")
    + f"**On the wire.** The scenario sends a browser's `Accept-Encoding`, so compression has something to do: "
    f"a response averaged **{wire['baseline']:,.0f} bytes** of body in the baseline and "
    f"**{wire['baseline,+compression']:,.0f}** with `compression` "
    f"(medians; round by round, {wire_verdict}); everything on sent {wire['all']:,.0f}.\n\n"
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
# ## 3 · Where does the time go?
# Every response carries `Server-Timing: db;dur=…, cache;dur=…, app;dur=…, total;dur=…`.
# Averaged per endpoint and set against the latency the client saw, it splits a request
# into database, cache, framework + handler (`app`) and everything outside the server
# (network, kernel, queueing in front of the server and in the generator).

# %%
breakdowns = pd.concat({m: time_breakdown(modes.merged(m)) for m in ("baseline", "all")}, names=["mode", "endpoint"])
readable(breakdowns)

# %%
from perf.load import mix_breakdown

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
# `Server-Timing` says which part is slow; a profiler says which *code*. Here the API runs
# with one worker under pyinstrument, which samples its call stack every millisecond, but only
# between two signals: after the server is up and warmed by a short unmeasured load, and until
# the measured load ends, so imports and startup stay out. The same for the syllabus' design
# (baseline) and everything on, one after the other.

# %%
from IPython.display import SVG

from perf.load import flame_svg, widest_frames


async def measure_profiles():
    def profiled_api(mode):
        return ProfiledServer(["perf", "api", "--port", "{port}", "--mode", mode, "--schema", SCHEMA,
                               "--products", str(PRODUCTS), "--cache-namespace", f"{SCHEMA}:profile:{mode}",
                               "--database-url", services.database_url, "--redis-url", services.redis_url,
                               f"--api-token={TOKEN}"])

    profiles = {}
    with start_together(profiled_api("baseline"), profiled_api("all")) as profiled_servers:
        for mode, profiled in zip(("baseline", "all"), profiled_servers, strict=True):
            pin_process(profiled.pid, server_cores)
            await run_load(profiled.url, model=ClosedModel(users=16, duration=0.5), scenario=scenario)  # warm-up
            profiled.begin()
            await run_load(profiled.url, model=ClosedModel(users=16, duration=SECONDS * 2), scenario=scenario)
            profiles[mode] = profiled.end()
    return profiles


profiles = await replayable("profiles", measure_profiles)
frames = top_frames(profiles["all"], n=8)
readable(frames.assign(share=frames["share"].map("{:.1%}".format)))

# %% [markdown]
# The table lists *self* time (time in a function itself). A **flame graph** shows the whole
# tree: each box is a function, its width the share of the sampled time spent in it and in what
# it called, the boxes above it are its callees. The bottom rows are the trunk every request
# shares (the event loop, uvicorn's protocol); what the server did branches off it. Hover a
# box for its file, time and share. Colours: orange `perf` (this workbook's code), blue Nexios,
# green asyncpg, red redis-py, grey uvicorn and the event loop.

# %%
for mode, title in (("baseline", "the syllabus' design (baseline)"), ("all", "everything on")):
    display(SVG(flame_svg(profiles[mode], title=f"Flame graph under the product scenario: {title}")))

# %%
def widest_sentence(mode: str) -> str:
    rows = widest_frames(profiles[mode], n=3)
    return "; ".join(f"`{r.function}` ({r.file}, {r.share:.0%} of the samples: {r.what})" for r in rows.itertuples())


display(Markdown(
    "Read bottom-up, the widest boxes where the time divides (a box whose one callee takes 90% of it "
    "passes the request on, so the callee is named instead), from one profiled window each "
    f"({SECONDS * 2:g} s of 16 users):\n\n"
    f"- **baseline**: {widest_sentence('baseline')}\n"
    f"- **everything on**: {widest_sentence('all')}\n\n"
    "A `poll`, `select` or `epoll` box is the event loop waiting for the network: idle time, not work. "
    "These are shares of one window, not a comparison between the two servers: section 2's rounds "
    "say which design serves more."))

# %% [markdown]
# ## 4 · Load balancing: workers
# The syllabus starts its server with `uvicorn.run(app, host="0.0.0.0", port=8000, workers=4)`.
# Here is that line, with a trivial app object, in a subprocess:

# %%
from perf.lab import compare_workers, run_app_object_workers

seed_run = replayable_sync("app_object_workers", lambda: run_app_object_workers(workers=4))
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
balance = await replayable("workers", lambda: compare_workers(
    ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:balance"),
    workers=(1, 2), users=settings.pick([4, 32], [4, 16, 64, 128]), duration=settings.pick(0.75, 3.0),
    warmup=settings.pick(0.3, 1.0), rounds=3))  # a gain is claimed only when >= 3 rounds agree
levels = balance.levels.groupby(["workers", "users"])["rps"].agg(["median", "min", "max"])
readable(levels)

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for count, rows in levels.groupby(level="workers"):
    users = rows.index.get_level_values("users")
    ax.errorbar(users, rows["median"], yerr=[rows["median"] - rows["min"], rows["max"] - rows["median"]],
                marker="o", capsize=3, label=f"{count} worker{'s' if count > 1 else ''}")
ax.set(xscale="log", xlabel="concurrent users", ylabel="requests/s (median, min-max)",
       title=f"GET {balance.path}: 1 vs 2 workers ({info['cpus']} CPUs)")
user_levels = sorted(set(levels.index.get_level_values("users")))
ax.set_xticks(user_levels, [str(u) for u in user_levels])  # the levels measured, not powers of ten
ax.minorticks_off()
ax.legend()
plt.show()

# %%
round_peaks = balance.levels.groupby(["workers", "round"])["rps"].max().groupby("workers")
peaks, lows, highs = round_peaks.median(), round_peaks.min(), round_peaks.max()
gain = peaks[2] / peaks[1]
by_round = balance.levels.groupby(["workers", "round"])["rps"].max().unstack("workers")
second_worker = compare(by_round[2].tolist(), by_round[1].tolist(), a="two workers' peak", b="one worker's",
                        larger_is_better=True, words=("higher", "lower"))
two = balance.spread[balance.spread["workers"] == 2]
cores = balance.cpu.groupby("workers")[["server_cores", "generator_cores"]].median()
display(Markdown(
    f"Peak throughput (best level of each round, median over rounds): **{peaks[1]:,.0f} req/s** with one worker, "
    f"**{peaks[2]:,.0f} req/s** with two; round by round, {second_worker}. "
    f"The server's workers used **{cores.loc[1, 'server_cores']:.2f}** "
    f"cores with one worker and **{cores.loc[2, 'server_cores']:.2f}** with two, the generator "
    f"{cores.loc[2, 'generator_cores']:.2f}. The two workers served "
    f"{two['share'].min():.0%}-{two['share'].max():.0%} of the requests each (per worker and round), balanced by "
    f"connection, not by request. This machine has **{os.cpu_count()} CPUs** shared by the generator, PostgreSQL, "
    f"Redis and the server, so a second worker can at most take the core the generator and the other processes leave "
    + ("free, and here it did raise the peak." if second_worker.kind == "faster" else
       "free; here the rounds showed no gain." if second_worker.decided else
       "free; these rounds cannot say whether it did.")
    + (f" One worker kept only {cores.loc[1, 'server_cores']:.2f} of a core busy: other processes on this "
       "machine limited the run as much as the worker count did." if cores.loc[1, "server_cores"] < 0.9 else "")
    + " What it cannot show is scaling: on a machine with more cores than worker processes + generator, a "
    "CPU-bound route should scale close to linearly with workers until the cores run out (then extra workers only "
    "add context switches), and a worker count above the core count adds processes without adding cores (not "
    "measured here). Measure with the "
    "generator on its own machine before choosing `--workers`."))
# a second worker counts as a gain (or a loss) for the recommendations only when the rounds' verdict says so
worker_gain = float(gain) if second_worker.kind in ("faster", "slower") else None

# %% [markdown]
# ## 5 · Memory over a sustained run
# Throughput and latency say nothing about a worker that slowly eats memory until the
# kernel kills it. Here the product scenario (lists, items, writes) runs against the API with
# every optimisation on, for a sustained period, while a thread samples the RSS of the
# server's processes by pid (psutil) every 0.5 s. The workers' L1 caches start empty and fill
# with the pages the scenario reads; the L1 is bounded (10,000 entries per worker, 30 s per
# entry), so a cache filling up should level off, whereas a leak keeps the same slope to the end.

# %%
from perf.load import rss_under_load

RSS_SECONDS = settings.pick(6.0, 60.0)


async def measure_rss():
    with ApiServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:rss"),
                   workers=2, cpu=sorted(server_cores)) as server:
        return await rss_under_load(server, scenario=product_scenario(products=PRODUCTS, categories=20,
                                                                      token=server.token),
                                    duration=RSS_SECONDS, users=16, interval=0.5)


rss_run = await replayable("rss", measure_rss)
assert rss_run.result.error_rate == 0 and rss_run.requests > 0

fig, ax = plt.subplots(figsize=(7, 3.5))
for pid, rows in rss_run.samples[rss_run.samples["role"] == "worker"].groupby("pid"):
    ax.plot(rows["t"], rows["rss_mib"], marker=".", label=f"worker {pid}")
ax.set(xlabel="seconds into the run", ylabel="RSS (MiB)", ylim=(0, None),
       title=f"API worker RSS under the product scenario ({rss_run.requests:,} requests)")
ax.legend()
plt.show()

# %%
from perf.measure import trend

workers_seen = int(rss_run.total["workers"].max())
late_half = rss_run.total[rss_run.total["t"] >= rss_run.duration / 2]
whole_trend = trend(rss_run.total["requests"].tolist(), rss_run.total["rss_mib"].tolist(),
                    what="the workers' RSS over the whole run", unit="MiB")
late_trend = (trend(late_half["requests"].tolist(), late_half["rss_mib"].tolist(),
                    what="the workers' RSS over the second half", unit="MiB") if len(late_half) >= 3 else None)
rss_kind = ("flat" if whole_trend.kind == "levelled" else
            "levelled off" if late_trend is not None and late_trend.kind == "levelled" else
            "growing" if late_trend is not None and late_trend.kind == "rising" else "inconclusive")
verdicts = {
    "flat": "stayed **flat**: no leak, and nothing left to fill",
    "levelled off": "**grew, then levelled off**: the caches filled to what the scenario reads, then stopped",
    "growing": "was **still growing at the end**",
    "inconclusive": "may or may not have levelled off: the samples cannot say",
}
display(Markdown(
    f"Over {RSS_SECONDS:.0f} s and **{rss_run.requests:,} requests** the {workers_seen} workers together started at "
    f"**{rss_run.start_mib:.1f} MiB** of RSS, ended at **{rss_run.end_mib:.1f} MiB** and peaked at "
    f"**{rss_run.peak_mib:.1f} MiB**: a slope of **{rss_run.slope_mib_per_10k:+.2f} MiB per 10,000 requests** "
    f"over the whole run, {rss_run.early_slope_mib_per_10k:+.2f} over its first half and "
    f"{rss_run.late_slope_mib_per_10k:+.2f} over its second. In this one run RSS {verdicts[rss_kind]} ({whole_trend}"
    + (f"; {late_trend}" if late_trend is not None else "") + "). "
    + ("A slope that stays the same to the end is the signature of a leak; before calling it one, check that "
       "the run was long enough for the L1 to reach its bound (each worker's L1 holds at most 10,000 entries, "
       f"here at most the {PRODUCTS:,} products and the list pages the scenario reads, at about 1 KB each), "
       "and run it longer (`PERF_PROFILE=full`): a bounded cache flattens, a leak does not."
       if rss_kind == "growing" else
       (f"The {rss_run.growth_mib:.1f} MiB it grew is of the order of what the L1s fill with: "
        f"{workers_seen} workers x {PRODUCTS:,} products at ~1 KB each is {workers_seen * PRODUCTS / 1024:.1f} "
        "MiB, plus the list pages. " if rss_kind == "levelled off" else "")
       + "Bounded caches, pools of fixed size and no per-request state kept: the memory a worker needs is set "
       "in its first seconds; a longer run (`PERF_PROFILE=full`) is the way to check that the line stays put.")))

# %% [markdown]
# ## 6 · Recommendations
# Rules over those measurements (`perf.load.analysis.recommend`): each fires only when the
# evidence warrants it, most urgent first, and cites the number it rests on. The `/metrics.json`
# page supplies pool waits and the cache hit ratio; a calibration of the load generator (its
# ceiling against a trivial route of a server with the same settings) decides whether a run was
# client-bound (then only generator fixes are offered); section 4's worker rounds
# decide whether "add a worker" is worth saying (only when every round agreed).

# %%
async def measure_ceiling():
    trivial = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:calibration",
                          bare_routes=True)  # /bare/hello: the cheapest answer this server can give
    with ApiServer(trivial, cpu=sorted(server_cores)) as server:
        return await calibrate(server.url, path="/bare/hello", duration=settings.pick(1.0, 2.0))


ceiling = await replayable("calibration", measure_ceiling)
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
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it answers with what
# passed, what failed, and a hint if you ask for one (`hint=1`, then `hint=2`). Reference
# solutions are in `notebooks/solutions/`; try first.

# %% [markdown]
# ### Exercise 05.bottleneck: find the bottleneck
# `perf.exercises.slowed_api.BottleneckServer` serves this API with one route slowed on purpose.
# Find it by measuring, not by reading its code: load it with the product scenario and read
# `time_breakdown` (which endpoint's server time grew, and in which `Server-Timing` phase:
# `db`, `cache` or `app`), then profile it under load and read its flame graph (which function,
# above the route's handler, is wide). Name all three in `BOTTLENECK`. A start:
#
# ```python
# from perf.exercises.slowed_api import BottleneckServer
# from perf.load import time_breakdown
# slowed = BottleneckServer(ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:slowed"))
# with slowed:
#     run = await run_load(slowed.url, model=ClosedModel(users=16, duration=2), scenario=scenario)
# display(time_breakdown(run).round(2))
# with ProfiledServer(slowed.module_args()) as profiled:
#     await run_load(profiled.url, model=ClosedModel(users=16, duration=0.5), scenario=scenario)
#     profiled.begin()
#     await run_load(profiled.url, model=ClosedModel(users=16, duration=2), scenario=scenario)
#     display(SVG(flame_svg(profiled.end(), title="the slowed API")))
# ```
#
# The route is written as `"GET /path"` (no query string), the function by its name.

# %%
# EXERCISE 05.bottleneck: edit this cell, then run the check below
BOTTLENECK = {"route": "GET /products/{id}", "phase": "db", "function": ""}

# %%
await exercises.check("05.bottleneck", BOTTLENECK)

# %% [markdown]
# ### Exercise 05.db_share: the database's share of the latency, over the whole mix
# Write `db_share(result)` for a `LoadResult` of the product API: the share (0 to 1) of the
# latency the clients saw that the server spent in PostgreSQL, over **every response** of the
# run. `time_breakdown(result)` gives each endpoint's mean `db_ms` and `client_ms`;
# `result.histograms[endpoint].count` how many responses each endpoint had. The check runs the
# API under 90% cached list pages, 8% items and 2% writes and accepts an answer within 5% of its
# own. The starter is the usual mistake.

# %%
# EXERCISE 05.db_share: edit this cell, then run the check below
from perf.load import time_breakdown


def db_share(result):
    breakdown = time_breakdown(result)
    return breakdown["db_ms"].mean() / breakdown["client_ms"].mean()

# %%
await exercises.check("05.db_share", db_share)

# %% [markdown]
# ### Exercise 05.recommend: optimization recommendations that rest on the evidence
# Write `recommend_next(m)`: from the figures of one load run, the **one** most urgent action.
# `m` is a dict: `error_rate` (share of the scheduled requests that failed), `client_bound`
# (True when the throughput came within 20% of the generator's calibrated ceiling),
# `cpu_per_worker` (server CPU in cores per worker process), `pool_wait_p99_ms` (p99 wait for a
# pool connection), `hit_ratio` (cache hits over responses), and `db_share`, `cache_share`,
# `app_share` (each `Server-Timing` phase's share of the server's time). A figure that is `None`
# was not measured and fires no rule. Return one of these labels, from the **first** rule that
# fires, in this order (the order of `recommend()` in section 6):
#
# 1. `client_bound` → `"fix the load generator"`, whatever else the run shows: its server
#    figures are a floor, so no server change can be read from them;
# 2. `error_rate` above 1% (`> 0.01`) → `"fix errors"`: a failing service is fixed before it is tuned;
# 3. `cpu_per_worker >= 0.9` → `"add a worker"`;
# 4. `pool_wait_p99_ms > 5` → `"bigger pool"`;
# 5. `hit_ratio < 0.8` → `"cache more"`;
# 6. `db_share >= 0.5` → `"add an index / fewer queries"`;
# 7. `app_share >= 0.5` → `"trim the framework"`;
# 8. none of these → `"nothing to do"`.
#
# `cache_share` fires no rule (time in Redis is what the cache costs, not a reason for more of it).
# The check runs cases of known answer, then a real run of this API without its cache and
# compares with what `recommend()` says first on the same figures. The starter jumps to the
# database, the usual mistake.

# %%
# EXERCISE 05.recommend: edit this cell, then run the check below
def recommend_next(m):
    if m["db_share"] >= 0.5:
        return "add an index / fewer queries"
    return "nothing to do"

# %%
await exercises.check("05.recommend", recommend_next)

# %% tags=["plumbing"]
await cleanup(services, key_prefix=f"{SCHEMA}:", affinity=original_affinity)

# %%
print(f"This notebook ran in {time.perf_counter() - notebook_started:,.0f} s ({settings.profile} profile).")

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/05_api/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("05_api")
