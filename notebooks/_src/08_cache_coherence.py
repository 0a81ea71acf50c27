# %% [markdown]
# # 08 · The cache among many: stampedes, invalidation across processes, Redis going away
#
# Notebook 01 measured a cache in one process. The product API runs several workers (05), each
# with its own L1 in front of one Redis, and many requests ask for the same key at once. Here the
# seed's cache fails three more ways, each run and measured, and `perf.cache.MultiLevelCache`
# holds:
#
# * a hot key expires and every concurrent miss runs the query: **single-flight** (and a Redis
#   lease across processes) runs it once;
# * the seed "invalidated" with `delete("products:*")`, which deletes nothing, and its `clear` used
#   `KEYS`, which blocks Redis: `SCAN` + `UNLINK`, **tags as versions**, and invalidation that
#   reaches **every process**; a load that an invalidation overtook cannot store its old value;
# * Redis stops: the cache **fails open** to the loader, and a process that cannot hear
#   invalidations stops serving its L1.
#
# The slow thing we cache is the same PostgreSQL aggregate as in 01, in schema `nb08_cache`.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. How long it took in this run is printed by its clean-up cell. Exercises with
# automatic checks are at the end.

# %% tags=["plumbing"]
import asyncio
import tempfile
import time
import uuid

import asyncpg
import matplotlib.pyplot as plt
import pandas as pd
import redis.asyncio as redis
from IPython.display import Markdown, display

from perf import exercises
from perf.cache import MultiLevelCache, create_catalog, load_category_report
from perf.config import get_settings
from perf.measure import time_async
from perf.runs import current_run
from perf.services import ensure_services

notebook_started = time.perf_counter()
current_run()  # this notebook's run: every chart below is recorded into it
settings = get_settings()
services = ensure_services(settings)
URLS = {"database_url": services.database_url, "redis_url": services.redis_url}  # for the exercises' checks
SCHEMA = "nb08_cache"
NAMESPACE = f"nb08:cache:{uuid.uuid4().hex[:8]}"  # this run's keys; purged in the clean-up cell
ROWS = settings.pick(20_000, 400_000)

pool = await asyncpg.create_pool(services.database_url, min_size=2, max_size=10)
async with pool.acquire() as conn:
    await create_catalog(conn, schema=SCHEMA, rows=ROWS)
raw = redis.from_url(services.redis_url)
# a generous redis_timeout: on a busy machine a slow read must stay a Redis read, not fail open
cache = await MultiLevelCache(services.redis_url, namespace=NAMESPACE, default_ttl=600, redis_timeout=5.0).start()


async def report_loader():
    return await load_category_report(pool, 3, schema=SCHEMA)

print(f"profile {settings.profile}: {ROWS:,} products in {SCHEMA}.catalog")

# %% [markdown]
# ## 1. A 100-way stampede, with and without single-flight
# A popular key expires and 100 requests arrive at once. The seed's get-then-set lets every
# one of them run the query; `MultiLevelCache` runs it once (in this process with a shared
# future, across processes with a Redis lease) and hands the result to all 100.

# %%
from perf.cache import naive_get_or_load, run_stampede

unguarded = await run_stampede(lambda k, f: naive_get_or_load(cache, k, f), "stampede:naive", report_loader)
guarded = await run_stampede(lambda k, f: cache.get_or_load(k, f), "stampede:guarded", report_loader)
assert unguarded.loader_calls > 1
pd.DataFrame({"loader calls": [unguarded.loader_calls, guarded.loader_calls],
              "burst (ms)": [unguarded.seconds * 1e3, guarded.seconds * 1e3]},
             index=["naive get/set", "single-flight"]).round(1)

# %%
# NBVAL_CHECK_OUTPUT
print(f"single-flight: {guarded.requests} concurrent requests, loader ran {guarded.loader_calls} time(s)")

# %%
display(Markdown(
    f"Without coordination the query ran **{unguarded.loader_calls}** times and the burst took "
    f"**{unguarded.seconds * 1e3:.0f} ms** (the connection pool of 10 queues the other queries); with single-flight "
    f"it ran **{guarded.loader_calls}** time and everyone had the answer after **{guarded.seconds * 1e3:.0f} ms**. "
    "XFetch prevents most such bursts in the first place: a reader may refresh a hot key early, with a "
    "probability that rises as expiry approaches and with how slow the loader is."))

# %% [markdown]
# ## 2. Invalidation: patterns, tags, versions, and other processes
# First the seed's bug: `DEL` takes key names, not patterns, so `delete("products:*")`
# deletes nothing. A pattern needs `SCAN` + `UNLINK` (never `KEYS`, which blocks Redis while
# it walks every key); tags avoid scanning altogether. A tag is a *version* in Redis, not a list
# of keys: invalidating it gives it the next number of one sequence, and every entry records the
# sequence its load began at, so an entry whose tag moved is never read again (it expires by its
# TTL), and a load that began before the invalidation is refused when it tries to store (the race
# where a reader stores the old row after the writer invalidated it).

# %%
# NBVAL_CHECK_OUTPUT
for i in range(25):
    await cache.set(f"products:{i}", {"id": i}, tags=["category:demo"])
print("DEL 'products:*' deleted", await raw.delete(cache.l2.full_key("products:*")))
print("clear('products:1*') deleted", await cache.clear("products:1*"))
await cache.invalidate_tags("category:demo")
readable = [(await cache.get(f"products:{i}")).found for i in range(25)]
print("after invalidate_tags('category:demo'):", sum(readable), "of 25 still readable")

# %% [markdown]
# Why never `KEYS`? The seed's `clear` calls `KEYS pattern`, and Redis runs one command at a
# time: while `KEYS` walks every key, every other client waits. Below, another process runs
# `KEYS *`, then a `SCAN` loop, over the same keys (in a database of their own), while this
# notebook sends `GET` after `GET` and records how long each one took.

# %%
from perf.cache import keys_vs_scan

walk = await keys_vs_scan(services.redis_url, keys=settings.pick(300_000, 3_000_000), db=15)
walk_frame = pd.DataFrame({name: pd.Series(lat) * 1e3 for name, lat in walk.get_latencies.items()})
ax = walk_frame.plot(style=".", alpha=0.6, figsize=(8, 3.5), logy=True)
ax.set(xlabel="GET number (sent back to back while the walk ran)", ylabel="GET latency, ms",
       title=f"A concurrent GET while another client walks {walk.keys:,} keys")
for name in walk_frame.columns:  # the one GET that waited out the walk is a single dot: ring and label it
    slowest = walk_frame[name].idxmax()
    ax.scatter([slowest], [walk_frame[name].max()], s=160, facecolors="none", edgecolors="black", zorder=3)
    ax.annotate(f"slowest beside {name}: {walk_frame[name].max():,.1f} ms", (slowest, walk_frame[name].max()),
                xytext=(8, -4), textcoords="offset points", fontsize=8)
plt.show()

# %%
from perf.measure import compare

keys_worst, scan_worst = walk.worst_get("KEYS"), walk.worst_get("SCAN")
display(Markdown(
    f"While `KEYS *` ran over {walk.keys:,} keys, one `GET` waited **{keys_worst * 1e3:.0f} ms** (the median of "
    f"{len(walk.worst_gets['KEYS'])} rounds' slowest GET): the whole walk. "
    f"While a `SCAN` loop walked the same keys ({walk.walk_seconds['SCAN']:.1f} s in all, 1,000 per batch), the "
    f"slowest `GET` took **{scan_worst * 1e3:.1f} ms** ("
    + str(compare(walk.worst_gets["SCAN"], walk.worst_gets["KEYS"], a="the slowest GET beside SCAN",
                  b="beside KEYS", words=("shorter", "longer")))
    + "); the median GET "
    f"stayed at {pd.Series(walk.get_latencies['SCAN']).median() * 1e3:.2f} ms. `KEYS` blocks for time proportional "
    "to the whole keyspace; SCAN's pauses stay one batch long however many keys there are."))

# %% [markdown]
# Now across processes. `perf.cache.demo_worker` runs a `MultiLevelCache` in a separate Python
# process. It reads a product into its own L1; this notebook invalidates the product's tag;
# the worker's L1 copy is dropped by the pub/sub message, so its next read is a miss.

# %%
# NBVAL_CHECK_OUTPUT
from perf.cache import CacheWorker

await cache.set("product:42", {"id": 42, "price": 10}, tags=["product:42"])
async with CacheWorker(services.redis_url, NAMESPACE) as worker:
    print("worker first read :", (await worker.ask("fetch product:42"))["source"])
    print("worker second read:", (await worker.ask("get product:42"))["source"])
    print("L1 entries dropped here:", await cache.invalidate_tags("product:42"))
    for _ in range(100):
        after = await worker.ask("get product:42")
        if not after["found"]:
            break
        await asyncio.sleep(0.02)
    print("worker read after invalidation:", after["source"], "found" if after["found"] else "not found")

# %% [markdown]
# ## 3. Fail-open: Redis stops, the API keeps answering
# A private Redis (never the shared one) that we stop and start again. While it is down the
# cache runs the loader (`bypass`), counts the errors, leaves Redis alone for `retry_interval`,
# and recovers by itself. It also stops serving its L1: with Redis down it cannot hear another
# process's invalidations, so any copy it holds may be stale. (The API keeps its L1 with Redis
# down because every write also sends its tags with PostgreSQL `NOTIFY`, in its transaction:
# `perf.cache.pg_invalidation`.)

# %%
from perf.services import EmbeddedRedis

scratch = tempfile.TemporaryDirectory()
private = EmbeddedRedis(f"{scratch.name}/redis")
private.start()
resilient = await MultiLevelCache(private.url, namespace="nb_failopen", redis_timeout=0.2, retry_interval=0.3).start()
trace = [("up", (await resilient.fetch("report:3", report_loader)).source)]
private.stop()
for _ in range(500):  # the subscription drops at once; from then on this process is deaf
    if not resilient.coherence.hearing:
        break
    await asyncio.sleep(0.01)
trace.append(("down", (await resilient.fetch("report:3", report_loader)).source))
fresh_keys = (f"report:down:{i}" for i in range(1_000))
bypass = await time_async(lambda: resilient.fetch(next(fresh_keys), report_loader), warmup=1, repeat=5)
trace.append(("down", (await resilient.fetch("report:5", report_loader)).source))
private.start()
for attempt in range(100):
    source = (await resilient.fetch(f"report:probe:{attempt}", report_loader)).source
    if source != "bypass":
        break
    await asyncio.sleep(0.1)
trace.append(("back up", source))
errors_while_down = resilient.stats.errors["redis"]
assert resilient.redis_available

# %%
# NBVAL_CHECK_OUTPUT
for state, source in trace:
    print(f"Redis {state:<8} -> {source}")

# %%
display(Markdown(
    f"With Redis stopped even the report cached in L1 came from the loader (this process could no longer "
    f"hear invalidations, so it trusted no copy of its own); an uncached read took "
    f"**{bypass.median * 1e3:.1f} ms** through the loader (no exception, no timeout wait: the connection is "
    f"refused at once, and after the first error Redis is not even tried for {resilient.retry_interval} s). "
    f"The cache counted **{errors_while_down}** Redis error(s) and served Redis again "
    f"**{attempt + 1}** probe(s) after it restarted. With `fail_open=False` the same reads raise "
    "`CacheUnavailable` instead: a named choice, both paths tested."))

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against the real PostgreSQL and Redis (in a scratch schema and key prefix it drops
# afterwards) and answers with what passed, what failed and a hint. Reference solutions are in
# `notebooks/solutions/`; try first. `exercises.progress()` shows what you have done.

# %% [markdown]
# ### Exercise 08.invalidation: a price change never serves a stale page
# `shop.read_product(id)` and `shop.read_report(category)` (see `exercises.Shop?`) cache pages with
# tags. Write `update_price` so that right after it returns, every page showing the product, in
# this process and in every other one, shows the new price. The starter is the seed's way.

# %%
# EXERCISE 08.invalidation: edit this cell, then run the check below
async def update_price(shop, product_id, price):
    async with shop.pool.acquire() as conn:
        await conn.execute(f"UPDATE {shop.schema}.catalog SET price = $2 WHERE id = $1", product_id, price)

# %%
await exercises.check("08.invalidation", update_price, **URLS)

# %% [markdown]
# ### Exercise 08.stampede: a hot key's loader runs once however many ask at once
# Write `SingleFlight`: `await flight.run(key, loader)` calls `loader()` (a coroutine function) and
# returns its result. While a call for `key` is in progress, other calls for the same key wait for it
# and get **the same result, or the same exception**, instead of calling `loader` again. Once it has
# finished, the next `run(key, ...)` calls the loader again (it is not a cache), and calls for
# different keys do not wait for each other. The check's loader is a real 0.1 s PostgreSQL query.

# %%
# EXERCISE 08.stampede: edit this cell, then run the check below
class SingleFlight:
    async def run(self, key, loader):
        return await loader()

# %%
await exercises.check("08.stampede", SingleFlight, **URLS)

# %%
exercises.progress()

# %% [markdown]
# ## Clean up
# Close the caches (their pub/sub tasks and clients), purge this run's keys, stop the private
# Redis, close the pool and release the shared services (the catalog stays for the next run).

# %% tags=["plumbing"]
for c in (cache, resilient):
    await c.close()
await cache.l2.purge()
private.stop()
scratch.cleanup()
await raw.aclose()
await pool.close()
services.close()
print(f"This notebook ran in {time.perf_counter() - notebook_started:,.0f} s ({settings.profile} profile).")

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/08_cache_coherence/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("08_cache_coherence")
