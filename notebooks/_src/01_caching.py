# %% [markdown]
# # 01 · Caching: a multi-level cache, what a hit saves and what it costs
#
# The seed's `CacheManager` pickled whatever Redis handed back, ignored keyword arguments
# in its keys and cached a route by putting the request in the key. This notebook measures
# the cache in `perf.cache`, one process at a time:
#
# * **L1** an in-process LRU with per-entry TTL, in front of **L2** Redis: what each hit saves;
# * hit ratio cold vs **warmed**; many keys in one round trip; the serializer (and the seed's pickle);
# * **statistics** per level, latency as percentiles; what the L1 costs in memory;
# * the syllabus' `@cached` on a real route, and the decorator that fixes it.
#
# A cache shared by many processes and requests (stampedes, invalidation reaching every process,
# Redis going away) is notebook `08_cache_coherence`, after the product API has shown you workers.
# The slow thing we cache is a real PostgreSQL aggregate over a catalog table in schema `nb_cache`.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. How long it took in this run is printed by its clean-up cell. The profile (quick by
# default, full for real numbers) is read once, when the kernel starts: to switch, start JupyterLab
# as `PERF_PROFILE=full python3 tasks.py lab` (or `quick`) and restart the kernel. Exercises with
# automatic checks are at the end.

# %% tags=["plumbing"]
import tempfile
import time
import uuid

import asyncpg
import matplotlib.pyplot as plt
import pandas as pd
import redis.asyncio as redis
from IPython.display import Markdown, display

from perf import charts, exercises
from perf.cache import MultiLevelCache, create_catalog, load_category_report, load_product, zipf_ids
from perf.config import get_settings
from perf.measure import collect_machine_info, compare_async, compare_sync, readable
from perf.runs import current_run
from perf.services import ensure_services

notebook_started = time.perf_counter()
current_run()  # this notebook's run: every chart below is recorded into it
settings = get_settings()
services = ensure_services(settings)
URLS = {"database_url": services.database_url, "redis_url": services.redis_url}  # for the exercises' checks
SCHEMA = "nb_cache"
NAMESPACE = f"nb:cache:{uuid.uuid4().hex[:8]}"  # this run's keys; purged in the last cell
ROWS = settings.pick(20_000, 400_000)

pool = await asyncpg.create_pool(services.database_url, min_size=2, max_size=10)
async with pool.acquire() as conn:
    await create_catalog(conn, schema=SCHEMA, rows=ROWS)
raw = redis.from_url(services.redis_url)
# a generous redis_timeout: on a busy machine a slow read must stay a Redis read, not fail open
MEASURE = {"redis_timeout": 5.0}
cache = await MultiLevelCache(services.redis_url, namespace=NAMESPACE, default_ttl=600, **MEASURE).start()
l2_only = await MultiLevelCache(services.redis_url, namespace=NAMESPACE, l1_max_entries=0, **MEASURE).start()
info = await collect_machine_info(database_url=services.database_url, redis_url=services.redis_url)
print(f"profile {settings.profile}: {ROWS:,} products in {SCHEMA}.catalog")

# %% [markdown]
# ## 1. What a hit saves: loader vs L2 vs L1
# The loader is a per-category report: count, average, standard deviation and 90th
# percentile of price, plus the 20 most expensive products (a ~4 KB JSON payload).
# We time, interleaved round by round: the query itself, an **L2 hit** (a cache with L1
# switched off, so every read goes to Redis), and an **L1 hit**.

# %%
async def report_loader():
    return await load_category_report(pool, 3, schema=SCHEMA)

await cache.set("report:3", await report_loader())
levels = await compare_async(
    {"loader (PostgreSQL)": report_loader, "L2 hit (Redis)": lambda: l2_only.get("report:3"),
     "L1 hit (in-process)": lambda: cache.get("report:3")},
    warmup=3, repeat=settings.pick(15, 60), number=settings.pick(3, 10), baseline="loader (PostgreSQL)")
assert l2_only.stats.counts["l2_hits"] > 0 and not l2_only.stats.counts["bypass"]
levels_summary = levels.summary()
readable(levels.table("µs"))

# %%
charts.bar_with_spread(levels_summary, title="Reading one category report", unit="µs", log=True, info=info)
plt.show()

# %%
loader_ms = levels_summary.loc["loader (PostgreSQL)", "median"] * 1e3
l2_us = levels_summary.loc["L2 hit (Redis)", "median"] * 1e6
l1_us = levels_summary.loc["L1 hit (in-process)", "median"] * 1e6
display(Markdown(
    f"The query took **{loader_ms:.1f} ms**, an L2 hit **{l2_us:.0f} µs** "
    f"and an L1 hit **{l1_us:.1f} µs** (medians): "
    f"{levels.verdict('L2 hit (Redis)', 'loader (PostgreSQL)', a='an L2 hit', b='the query')}, and "
    f"{levels.verdict('L1 hit (in-process)', 'L2 hit (Redis)', a='an L1 hit', b='an L2 hit')}. "
    "An L2 hit is a network round trip plus decoding the JSON; an L1 hit is a dictionary lookup returning "
    "the already-decoded object, which is why L1 values must be treated as read-only."))

# %% [markdown]
# ## 2. Hit ratio over time, cold vs warmed
# Real traffic is skewed: a few products get most views. We replay the same Zipf-distributed
# sequence of product reads against a **cold** cache and against one **warmed** with the
# top-N products by `perf.cache.warming.warm` (bounded concurrency, so warming does not
# flood the database).

# %%
from perf.cache import hit_ratio_timeline, warm

POPULATION = settings.pick(2_000, 20_000)
REQUESTS = settings.pick(1_500, 20_000)
TOP_N = settings.pick(200, 2_000)
WINDOW = settings.pick(100, 500)
ids = zipf_ids(REQUESTS, population=POPULATION, seed=42)


async def replay(target):
    sources = []
    for pid in ids:
        result = await target.fetch(f"product:{pid}", lambda pid=pid: load_product(pool, pid, schema=SCHEMA))
        sources.append(result.source)
    return sources


cold = await MultiLevelCache(services.redis_url, namespace=NAMESPACE + ":cold", **MEASURE).start()
warmed = await MultiLevelCache(services.redis_url, namespace=NAMESPACE + ":warm", **MEASURE).start()
warm_report = await warm(warmed, [f"product:{i}" for i in range(1, TOP_N + 1)],
                         lambda key: load_product(pool, int(key.split(":")[1]), schema=SCHEMA), concurrency=8)
timeline = pd.concat([hit_ratio_timeline(await replay(cold), window=WINDOW, label="cold"),
                      hit_ratio_timeline(await replay(warmed), window=WINDOW, label=f"warmed (top {TOP_N})")])
print(f"warmed {warm_report.loaded} of {warm_report.requested} keys in {warm_report.seconds:.2f} s "
      f"({warm_report.rate:,.0f} keys/s), {warm_report.failed} failed")

# %%
charts.line_over(timeline, x="request", y="hit_ratio", hue="cache", title="Hit ratio as the cache warms",
                 xlabel=f"requests (windows of {WINDOW})", ylabel="hit ratio", info=info)
plt.show()

# %%
cold_first = timeline[timeline.cache == "cold"].hit_ratio.iloc[0]
cold_last = timeline[timeline.cache == "cold"].hit_ratio.iloc[-1]
warm_first = timeline[timeline.cache != "cold"].hit_ratio.iloc[0]
display(Markdown(
    f"The cold cache answered **{cold_first:.0%}** of the first {WINDOW} reads and **{cold_last:.0%}** of the "
    f"last {WINDOW}: every distinct product misses once. Warming the top {TOP_N} of {POPULATION:,} products "
    f"({warm_report.seconds:.2f} s), the warmed cache answered **{warm_first:.0%}** of its first window: with Zipf "
    f"traffic a small head of keys carries most reads (one replay each, of one seeded sequence: a count, not a "
    f"timing). Overall hit ratio: cold **{cold.stats.hit_ratio:.0%}**, "
    f"warmed **{warmed.stats.hit_ratio:.0%}**."))

# %% [markdown]
# ## 3. Many keys: sequential reads vs a pipeline vs MGET
# A listing page needs 50 products. One read per key pays 50 round trips (each a small script that
# also checks the entry's tags); a pipeline sends all 50 `GET`s at once; `MGET` is one command. All
# three decode the same values (these entries carry no tags; tagged ones cost one more `MGET` of their
# tags' versions).

# %%
page_keys = [f"product:{i}" for i in range(1, 51)]
await cache.l2.set_many({key: await load_product(pool, int(key.split(":")[1]), schema=SCHEMA)
                         for key in page_keys}, ttl=600)
assert len(await l2_only.l2.get_many(page_keys)) == 50


async def sequential():
    return [await l2_only.l2.get(key) for key in page_keys]

multi = await compare_async({"50 x read": sequential,
                             "pipeline of 50 GETs": lambda: l2_only.l2.get_many_pipelined(page_keys),
                             "one MGET": lambda: l2_only.l2.get_many(page_keys)},
                            warmup=3, repeat=settings.pick(15, 60), number=3, baseline="50 x read")
multi_summary = multi.summary()
charts.bar_with_spread(multi_summary, title="Fetching 50 cached products from Redis", unit="ms", info=info)
plt.show()

# %%
display(Markdown(
    f"Fifty sequential reads took **{multi_summary.loc['50 x read', 'median'] * 1e3:.1f} ms**; a pipeline "
    f"**{multi_summary.loc['pipeline of 50 GETs', 'median'] * 1e3:.2f} ms** "
    f"and MGET **{multi_summary.loc['one MGET', 'median'] * 1e3:.2f} ms** (medians): "
    f"{multi.verdict('pipeline of 50 GETs', '50 x read', a='the pipeline', b='50 reads')}; "
    f"{multi.verdict('one MGET', '50 x read', a='MGET', b='50 reads')}. "
    "The work on the server is the same; what disappears is 49 round trips and 49 trips through redis-py's "
    "command machinery."))

# %% [markdown]
# ## 4. Serializer cost for a realistic payload
# The seed pickled everything and unpickled whatever came back: anyone who can write to
# Redis could run code in the API. `perf.cache.serializers` uses orjson by default; pickle
# only with an HMAC signature that is verified before unpickling.

# %%
from perf.cache import JsonSerializer, OrjsonSerializer, SignedPickleSerializer

payload = await report_loader()
serializers = {s.name: s for s in (JsonSerializer(), OrjsonSerializer(),
                                   SignedPickleSerializer(b"notebook-demo-secret-0123456789"))}
codec = compare_sync({name: (lambda s=s: s.loads(s.dumps(payload))) for name, s in serializers.items()},
                     warmup=20, repeat=settings.pick(30, 100), number=50, baseline="json")
codec_summary = codec.summary()
codec_summary["bytes"] = [len(serializers[name].dumps(payload)) for name in codec_summary.index]
charts.bar_with_spread(codec_summary, title="dumps + loads of one category report", unit="µs", info=info)
plt.show()

# %%
display(Markdown(
    f"A round trip through the standard library's json took **{codec_summary.loc['json', 'median'] * 1e6:.0f} µs**, "
    f"orjson **{codec_summary.loc['orjson', 'median'] * 1e6:.0f} µs** "
    f"({codec.verdict('orjson', 'json', a='orjson', b='json')}) and signed pickle "
    f"**{codec_summary.loc['signed-pickle', 'median'] * 1e6:.0f} µs** ({codec_summary.loc['signed-pickle', 'bytes']:,} "
    f"bytes vs {codec_summary.loc['orjson', 'bytes']:,} for JSON). For scale, the L2 hit of section 1, timed in "
    f"another comparison, took {l2_us:.0f} µs: orjson's median is "
    f"{codec_summary.loc['orjson', 'median'] * 1e6 / l2_us:.0%} of that median (two medians from separate "
    "comparisons: a measurement, not a finding)."))

# %%
# NBVAL_CHECK_OUTPUT
signed = serializers["signed-pickle"]
tampered = bytearray(signed.dumps(payload))
tampered[-5] ^= 0x01
try:
    signed.loads(bytes(tampered))
except Exception as exc:
    print(type(exc).__name__, "-", exc)

# %% [markdown]
# Now the seed's bug itself. Someone who can write to Redis (another service sharing it, an
# exposed port) stores a pickle under a cache key. Here the payload only creates an empty
# marker file in a temporary directory; it could run anything. The seed's `CacheManager.get`
# (reproduced in `perf.cache.naive`) loads the key in a separate process, and the marker
# appears; the very same bytes given to the signed serializer are refused before unpickling.

# %%
# NBVAL_CHECK_OUTPUT
from perf.cache import pickle_attack

with tempfile.TemporaryDirectory() as tmp:
    attack = await pickle_attack(services.redis_url, tmp)
print("seed CacheManager.get returned", attack.seed_returned, "| marker file created:", attack.seed_ran_payload)
print("signed serializer:", attack.signed_refused.split(":")[0], "| marker file created:", attack.signed_ran_payload)
assert attack.seed_ran_payload and attack.signed_refused and not attack.signed_ran_payload

# %% [markdown]
# ## 5. Statistics
# Everything above was counted. `stats.snapshot()` is a flat dict (what `/metrics` exports);
# `stats.to_frame()` the same as a table; the latency histograms are HDR, so they merge across workers.

# %%
display(cache.stats.to_frame(readable=True).set_index("metric").head(16).T)

# %% [markdown]
# For the latency spectrum we replay the Zipf sequence once more against the cold run's
# namespace with L1 switched off: every read is now an L2 hit.

# %%
l2_replay = await MultiLevelCache(services.redis_url, namespace=NAMESPACE + ":cold", l1_max_entries=0,
                                  **MEASURE).start()
assert set(await replay(l2_replay)) == {"l2"}
charts.latency_percentiles({"L2 read (Zipf replay, L1 off)": l2_replay.stats.l2_latency,
                            "loader (cold replay)": cold.stats.load_time},
                           title="Latency by percentile: Redis hit vs PostgreSQL load", unit="ms", info=info)
plt.show()

# %%
from perf.measure import tail

l2_rounds = [l2_replay.stats.snapshot()]
for _ in range(2):  # two more replays: a tail verdict needs rounds, not one histogram
    l2_replay.stats.reset()
    await replay(l2_replay)
    l2_rounds.append(l2_replay.stats.snapshot())
snap, l2_snap = cold.stats.snapshot(), l2_rounds[0]
loader_tail = tail([snap["load_time_p50"]], [snap["load_time_p99"]])
l2_tail = tail([r["l2_latency_p50"] for r in l2_rounds], [r["l2_latency_p99"] for r in l2_rounds])
display(Markdown(
    f"During the cold replay {snap['reads']:,} reads split into {snap['l1_hits']:,} L1 hits, {snap['l2_hits']:,} "
    f"L2 hits and {snap['misses']:,} misses (each product missed once, then lived in L1). The product loader's "
    f"median was **{snap['load_time_p50'] * 1e3:.2f} ms** and its p99 **{snap['load_time_p99'] * 1e3:.2f} ms**; "
    f"the {l2_snap['l2_hits']:,} L2 reads of the first replay had a median of "
    f"**{l2_snap['l2_latency_p50'] * 1e3:.2f} ms** and a p99 of "
    f"**{l2_snap['l2_latency_p99'] * 1e3:.2f} ms**. Tails matter, because they are what the slowest users see: "
    f"for the L2 reads over {len(l2_rounds)} replays, {l2_tail}; for the loader, which the one cold replay "
    f"times only once per product, {loader_tail}."))

# %% [markdown]
# ## 6. What the L1 costs in memory
# L1 keeps the decoded objects, not bytes: a product dict with its strings and floats, a
# category report with its 20 products. How many bytes is one entry, and how does the
# process's RSS grow with entries? `payload_sizes` decodes sample payloads while
# `tracemalloc` counts what they allocate; `l1_rss` fills an `LRUCache` with N products (each
# a fresh decoded copy under its own key, as L1 fills from Redis) in a fresh interpreter per
# point and reads its RSS growth (psutil), once bounded by count only and once by
# `max_bytes`, the bound `MultiLevelCache(l1_max_bytes=...)` sets.

# %%
from perf.cache import l1_rss, payload_sizes

products = [await load_product(pool, pid, schema=SCHEMA) for pid in range(1, 201)]
reports = [await load_category_report(pool, category, schema=SCHEMA) for category in range(20)]
payloads = payload_sizes({"product": products, "category report": reports}).set_index("payload")
display(readable(payloads))
L1_BUDGET = settings.pick(1, 8) * 2**20  # serialized bytes
ENTRIES = settings.pick((1_000, 5_000, 10_000, 20_000), (10_000, 50_000, 100_000, 200_000))
l1_memory = l1_rss(products, sizes=ENTRIES, max_bytes=L1_BUDGET)
charts.line_over(l1_memory, x="entries", y="rss_growth_mib", hue="l1", title="Process RSS against L1 entries",
                 xlabel="product entries inserted", ylabel="RSS growth (MiB)", legend_title="L1 bound", info=info)
plt.show()

# %%
bounded = await MultiLevelCache(services.redis_url, namespace=NAMESPACE + ":bytes", l1_max_bytes=20 * 2**10,
                                **MEASURE).start()
for product in products:
    await bounded.set(f"product:{product['id']}", product)
assert bounded.l1 is not None and bounded.l1.bytes <= 20 * 2**10 and bounded.l1.evictions > 0
await bounded.close()

from perf.measure import trend

rss_curve = l1_memory[l1_memory["l1"] == "count only"].set_index("entries")
capped = l1_memory[l1_memory["l1"] != "count only"].set_index("entries")
product, report = payloads.loc["product"], payloads.loc["category report"]
per_entry = rss_curve["rss_per_entry_bytes"].median()
reports_mib = 10_000 * (report["in_memory_bytes"] + per_entry - product["in_memory_bytes"]) / 2**20
largest = ENTRIES[-1]
full = capped[capped.index > capped["entries_kept"]]  # fills past the point where the bound evicts
count_trend = trend(list(rss_curve.index), list(rss_curve["rss_growth_mib"]), what="RSS bounded by count only",
                    unit="MiB")
capped_trend = (trend(list(full.index), list(full["rss_growth_mib"]), what="RSS once the bound was full", unit="MiB")
                if len(full) >= 3 else "too few fills past the bound to say whether RSS levelled off")
budget = rss_curve["rss_per_entry_bytes"] / product["serialized_bytes"]
capped_x = capped.loc[largest, "rss_growth_mib"] * 2**20 / L1_BUDGET
display(Markdown(
    f"A product is **{product['serialized_bytes']:.0f} bytes** of JSON and **{product['in_memory_bytes']:.0f} bytes** "
    f"as a decoded dict ({product['ratio']:.1f}x); a category report {report['serialized_bytes'] / 1024:.1f} KB "
    f"of JSON and {report['in_memory_bytes'] / 1024:.1f} KB decoded ({report['ratio']:.1f}x). In an L1 each product "
    f"entry cost **{per_entry:.0f} bytes of RSS** (median over {len(ENTRIES)} fills; "
    f"{rss_curve['rss_per_entry_bytes'].min():.0f}–{rss_curve['rss_per_entry_bytes'].max():.0f}): the decoded "
    f"payload plus its key, the entry record and the LRU's slot. Bounded by count only, {largest:,} entries took "
    f"**{rss_curve.loc[largest, 'rss_growth_mib']:.1f} MiB** ({count_trend}). At the median per-entry cost the default "
    f"`l1_max_entries=10_000` of products is about {10_000 * per_entry / 2**20:.0f} MiB per process, but 10,000 "
    f"category reports would be about {reports_mib:.0f} MiB: a count bound says nothing about memory when "
    "payloads differ in size. "
    f"Bounded by `max_bytes={L1_BUDGET:,}` the L1 kept {capped.loc[largest, 'entries_kept']:,} entries and "
    f"RSS grew by {', '.join(f'{v:.2f}' for v in capped['rss_growth_mib'])} MiB as "
    f"{', '.join(f'{n:,}' for n in capped.index)} were inserted: {capped_trend}. The bound counts "
    "the serialized length (the bytes a cache already has from Redis, so sizing costs nothing on a hit); budget "
    f"the process for at least **{max(budget.max(), capped_x):.1f}x** `l1_max_bytes` of RSS: this run's bounded "
    f"fill reached {capped_x:.1f}x it at {largest:,} inserts, and the per-entry cost of the count-only fills "
    f"over a product's JSON was {budget.min():.1f}x-{budget.max():.1f}x. Measure your own payloads."))

# %% [markdown]
# ## 7. The syllabus' `@cached` on a real route
# The syllabus caches a route by decorating its handler: `@cached("user", expire=60)` over
# `get_user(request, response, user_id)`, with `cache_key(prefix, *args)` hashing the
# arguments' `str()`. `perf.cache.demo_decorator` reproduces both as written and mounts the
# route on a real Nexios app, then sends 20 GETs over 2 user ids through it (in process, on
# the real framework and Redis) and counts what happened. Then the key patched the ways a
# reader tries next, and last `perf.cache.cached` on the data function the handler calls.

# %%
from perf.cache import cached, cached_route, handler_metadata, naive, seed_cached, seed_route, serve_users

seed_cache = naive.CacheManager(services.redis_url)
routes = {"seed, as written": seed_route(seed_cache),
          "seed, key from every argument": seed_route(seed_cache, key_from="all values"),
          "seed, key from request and path": seed_route(seed_cache, key_from="request and path"),
          "seed, key from the path only": seed_route(seed_cache, key_from="path only"),
          "perf.cache.cached": cached_route(cache)}
decorator_runs = [await serve_users(label, route, requests=20, users=2) for label, route in routes.items()]
await seed_cache.aclose()
decorator_table = pd.DataFrame([run.row() for run in decorator_runs]).set_index("way")
decorator_table

# %%
written, *patched, fixed = decorator_runs
display(Markdown(
    f"As written, {sum(s >= 500 for s in written.statuses)} of {len(written.statuses)} requests failed: "
    f"`{written.first_error}`. Nexios passes path parameters as keyword arguments, and `cache_key` takes none. "
    f"Keying on every argument's `str()` fails too ({sum(s >= 500 for s in patched[0].statuses)} of 20: "
    f"`{patched[0].first_error}`): one of the arguments is the handler's own `Response`. Keyed on the request and "
    f"the path, or on the path only, the route answers, but the 'database query' still ran "
    f"**{patched[1].loads}** and **{patched[2].loads}** times for 20 requests: the value the seed stores is the "
    "handler's `Response`, which pickle refuses, and the seed's `set` swallows the error (`except: return False`). "
    f"`perf.cache.cached` on the data function ran the query **{fixed.loads}** times: once per user, "
    f"{len(set(fixed.keys_asked))} keys (`user:{{user_id}}`), the data cached rather than the response."))

# %% [markdown]
# The seed's `wrapper` also drops what the handler says about itself (no `functools.wraps`):
# its name, docstring and signature, which `?` in a notebook, tracebacks and OpenAPI read.

# %%
async def get_user(request, response, user_id: int):  # noqa: ANN001, ANN201
    """One user, as JSON."""

pd.DataFrame({"seed @cached": handler_metadata(seed_cached(seed_cache, "user")(get_user)),
              "perf.cache.cached": handler_metadata(cached(cache, key="user:{user_id}")(get_user))})

# %% [markdown]
# What the fixed decorator costs on a hit: an L1 hit through `@cached` beside `cache.get` of the
# same key, interleaved rounds; the extra µs per call with its interquartile range.

# %%
from perf.bench import decorator_overhead

overhead = await decorator_overhead(cache, repeat=settings.pick(30, 200), number=200)

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against the real PostgreSQL and Redis (in a scratch schema and key prefix it drops
# afterwards) and answers with what passed, what failed and a hint. Reference solutions are in
# `notebooks/solutions/`; try first. `exercises.progress()` shows what you have done.

# %% [markdown]
# ### Exercise 01.two_level: a two-level cache with statistics, and its hit ratio
# The syllabus' homework: a multi-level cache with statistics, here small enough to write yourself.
# `TwoLevelCache(redis, prefix, max_entries=100)` keeps an in-process L1 of at most `max_entries`
# entries (the least recently used leaves first) in front of Redis (every key under `prefix`).
# `await get(key)` returns the value or `None`: from L1, else from Redis (then kept in L1).
# `await set(key, value, ttl)` stores **JSON** in Redis with that TTL in seconds, and keeps the value
# in L1 for the same TTL. `stats()` returns a dict with `l1_hits`, `l2_hits` and `misses` (what each
# `get` found) and `hit_ratio`: (l1_hits + l2_hits) / gets, 0.0 before any. The check also runs it
# read-through over 400 Zipf-distributed reads and shows the hit ratio. The starter is the seed's way.

# %%
# EXERCISE 01.two_level: edit this cell, then run the check below
import pickle


class TwoLevelCache:
    def __init__(self, redis, prefix, max_entries=100):
        self.redis, self.prefix = redis, prefix

    async def get(self, key):
        data = await self.redis.get(self.prefix + key)
        return pickle.loads(data) if data else None

    async def set(self, key, value, ttl):
        await self.redis.setex(self.prefix + key, ttl, pickle.dumps(value))

    def stats(self):
        return {}

# %%
await exercises.check("01.two_level", TwoLevelCache, **URLS)

# %% [markdown]
# ### Exercise 01.warming: warm the top products before traffic arrives
# Write `warm_top` so that the first `shop.read_product(id)` of every id in `ids` is a cache hit
# (and the entries can still be invalidated by their tag).

# %%
# EXERCISE 01.warming: edit this cell, then run the check below
async def warm_top(shop, ids):
    raise NotImplementedError("load each product and store it where shop.read_product will look")

# %%
await exercises.check("01.warming", warm_top, **URLS)

# %%
exercises.progress()

# %% [markdown]
# ## Clean up
# Close every cache (their pub/sub tasks and clients), purge this run's keys, close the pool and
# release the shared services.

# %% tags=["plumbing"]
for c in (cache, l2_only, cold, warmed, l2_replay):
    await c.close()
purge = MultiLevelCache(services.redis_url, namespace=NAMESPACE)
for ns in (NAMESPACE, NAMESPACE + ":cold", NAMESPACE + ":warm", NAMESPACE + ":bytes"):
    purge.l2.namespace = ns
    await purge.l2.purge()
await purge.close()
await raw.aclose()
await pool.close()
services.close()
print(f"This notebook ran in {time.perf_counter() - notebook_started:,.0f} s ({settings.profile} profile).")

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/01_caching/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("01_caching")
