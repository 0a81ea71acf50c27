# %% [markdown]
# # 09 · The framework: what Nexios costs a request, in process and under load
#
# Notebook 05 measured the product API with everything it does: the database, the cache, the
# pool, compression. Under all of it sits a web framework. This notebook takes the framework
# out of the sum: the same routes, the same service, cache and data, served three ways (the
# framework as it ships, this API's lean path through it, and no framework at all), first in
# process (no sockets, no HTTP parsing: only the framework differs), then where its time goes
# (a profile), then under load through uvicorn, side by side in one run.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. How long this notebook took in this run is printed by its clean-up cell.

# %% tags=["plumbing"]
import os
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from perf import charts
from perf.api import ApiServer, ApiSettings, new_token
from perf.config import get_settings
from perf.lab import cleanup
from perf.load import calibrate, compare_paths
from perf.measure import compare, machine_info, readable
from perf.runs import current_run, replay_note, replayable
from perf.services import current_affinity, ensure_services, pin_process, split_cores, start_together

current_run()  # this notebook's run: every chart below is recorded into it
notebook_started = time.perf_counter()
settings = get_settings()
services = ensure_services(settings)
info = machine_info()
SCHEMA = "nb09_framework"  # this notebook's PostgreSQL schema and Redis key prefix
PRODUCTS = settings.pick(2_000, 20_000)
server_cores, generator_cores = split_cores()
original_affinity = current_affinity()  # None where the platform cannot pin
pin_process(os.getpid(), generator_cores)  # the generator (this kernel) stays off the server's cores
api = dict(database_url=services.database_url, redis_url=services.redis_url, schema=SCHEMA, api_token=new_token())
print("profile:", settings.profile, "| server cores", sorted(server_cores),
      "| generator cores", sorted(generator_cores))
if replayed := replay_note():  # PERF_REPLAY=<run id>: every measuring step below returns that run's result
    display(Markdown(f"**{replayed}**"))

# %% [markdown]
# ## 1 · The framework in process
# Every number of notebook 05 went through Nexios. What does the framework itself cost per request,
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
# * **bare ASGI**: the same routes under `/bare/` (`perf.api.bare_routes`): same ASGI layers
#   (timing, body limit, compression, error boundary), same `ProductService`, cache and
#   validation; only the framework is missing.
#
# First **in process**: the app called as an ASGI function, no sockets and no HTTP
# parsing (`perf.measure.InProcessClient`, with the app's lifespan: pool, cache, queue),
# so only the framework differs. Reads come from the L1 cache; writes commit in PostgreSQL.

# %%
from perf.lab import BARE, DEFAULT, LEAN, framework_apps, framework_costs, framework_profile

framework_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:framework")


async def measure_framework():
    async with framework_apps(framework_settings) as apps:
        costs = await framework_costs(apps, repeat=settings.pick(5, 15), number=settings.pick(100, 300),
                                      write_number=settings.pick(5, 15))
        return costs, await framework_profile(apps, number=settings.pick(500, 2000))


costs, profile = await replayable("framework", measure_framework)
costs.pivot(index="route", columns="variant", values="median_us").loc[costs.route.unique()].pipe(readable)

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
    f"**{ratios.loc[writes, DEFAULT].max():.2f}x**. The largest lean-path ratio in the table is "
    f"`{worst}`'s, **{ratios.loc[worst, LEAN]:.2f}x**. These are medians of per-round ratios to bare ASGI; "
    f"per route, the default path's median time is **{default_x.min():.1f}x-{default_x.max():.1f}x** the lean "
    f"one's (the table above has the µs). This cell keeps only each route's summary, not its rounds, so these "
    "are measurements: no route is ranked against another here, and the load test below judges lean against "
    "bare and default from its rounds."))

# %% [markdown]
# ## 2 · Where the time goes
# cProfile over the cached `GET /products/7`, own time grouped by
# package (µs per request *under the profiler*, which slows every Python call, so compare
# the columns, not the absolute values). `C` is built-in code such as `orjson.dumps`.

# %%
readable(profile.head(8))

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
# ## 3 · Under load
# Through uvicorn and the network stack: the same server answers the cached
# list page through Nexios and as its bare twin, and a second server runs the framework's
# default path; rounds alternate between them so machine noise hits all three alike.

# %%
PAGE = "/products?page=1"
PAGE_ROUTE = "GET /products?page=1"  # its label in the in-process table
lean_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:lean",
                            bare_routes=True)  # the same routes under /bare/, without Nexios
default_settings = ApiSettings(**api, mode="all", products=PRODUCTS, cache_namespace=f"{SCHEMA}:default",
                               nexios_lean=False)


async def measure_under_load():
    with start_together(ApiServer(lean_settings, cpu=sorted(server_cores)),
                        ApiServer(default_settings, cpu=sorted(server_cores))) as (lean_server, default_server):
        # the generator's own ceiling, against the API's trivial endpoint: a path near it measures the generator
        ceiling = await calibrate(lean_server.url, path="/bare/hello", duration=settings.pick(1.0, 2.0))
        rounds = []
        for rnd in range(settings.pick(3, 5)):
            for url, paths in ((lean_server.url, {LEAN: PAGE, BARE: "/bare" + PAGE}),
                               (default_server.url, {DEFAULT: PAGE})):
                frame = await compare_paths(url, paths, rounds=1, seconds=settings.pick(0.75, 2.0), users=16)
                rounds.append(frame.assign(round=rnd))
    return ceiling, pd.concat(rounds, ignore_index=True)


ceiling, under_load = await replayable("under_load", measure_under_load)
load_summary = under_load.groupby("path")[["rps", "p50_ms"]].median().loc[[DEFAULT, LEAN, BARE]]
readable(load_summary)

# %%
per_round = under_load.pivot(index="round", columns="path", values="rps")
lean_vs_bare = per_round[LEAN] / per_round[BARE]
lean_vs_default = per_round[LEAN] / per_round[DEFAULT]
bare_bound = load_summary.loc[BARE, "rps"] >= 0.8 * ceiling.ceiling
in_process_allows = 1 / ratios.loc[PAGE_ROUTE, LEAN]
lean_load = compare(per_round[LEAN], per_round[BARE], a="the lean path", b="its bare twin", larger_is_better=True)
lean_default = compare(per_round[LEAN], per_round[DEFAULT], a="the lean path", b="the framework's default path",
                       larger_is_better=True)
gap_verdict = compare(per_round[LEAN], per_round[BARE] * in_process_allows, a="the lean path's req/s under load",
                      b="what the in-process ratio alone allows", larger_is_better=True, words=("higher", "lower"))
display(Markdown(
    f"Cached `GET {PAGE}` under load: the lean Nexios path served **{lean_vs_bare.median():.2f}x** the bare "
    f"twin's req/s (rounds {lean_vs_bare.min():.2f}x-{lean_vs_bare.max():.2f}x) and "
    f"**{lean_vs_default.median():.1f}x** "
    f"the framework's default path (rounds {lean_vs_default.min():.1f}x-{lean_vs_default.max():.1f}x): "
    f"{lean_load}; {lean_default}. "
    + ("The bare path ran near the load generator's ceiling, so the gap to it is a lower bound. "
       if bare_bound else "None of them ran near the load generator's ceiling. ")
    + (f"In process the same route took {ratios.loc[PAGE_ROUTE, LEAN]:.2f}x the bare time, which alone would "
       f"allow {in_process_allows:.2f}x the req/s: {gap_verdict}"
       + (", so under load the gap is smaller: uvicorn's HTTP parsing and the socket work cost the same on "
          "all three paths." if gap_verdict.kind == "faster" else
          ", so under load the gap is no smaller." if gap_verdict.kind == "slower" else "."))))

# %% tags=["plumbing"]
await cleanup(services, key_prefix=f"{SCHEMA}:", affinity=original_affinity)

# %%
print(f"This notebook ran in {time.perf_counter() - notebook_started:,.0f} s ({settings.profile} profile).")

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/09_framework/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("09_framework")
