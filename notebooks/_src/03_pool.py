# %% [markdown]
# # 03 · Connection pooling: a correct, fast pool
#
# Opening a PostgreSQL connection costs a TCP handshake, a backend process fork,
# authentication and session setup, all before the query itself runs (section 3 measures
# what that costs on this machine). A pool keeps connections open and lends them out. Getting a pool *right*
# is harder than it looks, so this notebook first runs the seed tutorial's pool
# (reproduced faithfully in `perf.pool.naive`, **the thing not to do**) and watches it
# fail, then races `perf.pool` (in each reset mode) against connecting per request and
# asyncpg's own pool (with and without its reset).
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. In run 20261205-025021-workbook (quick profile, the default; a 2-core machine shared with
# other work, load average ~5) it ran in **52 s**; the full profile took about **4 minutes** on a
# 2-core machine (measured before runs had ids). The profile is read once, when the
# kernel starts: to switch, start JupyterLab as `PERF_PROFILE=full python3 tasks.py lab`
# (or `quick`) and restart the kernel. Exercises with automatic checks are at the end.

# %% tags=["plumbing"]
import asyncio
import tempfile
import uuid
from contextlib import AsyncExitStack

import asyncpg
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from perf import charts, exercises
from perf.config import get_settings
from perf.measure import collect_machine_info, readable
from perf.runs import current_run
from perf.services import EmbeddedPostgres, ensure_services

current_run()  # this notebook's run: every chart below is recorded into it
settings = get_settings()
services = ensure_services(settings)
URLS = {"database_url": services.database_url, "redis_url": services.redis_url}  # for the exercises' checks
dsn = services.database_url
app_name = f"nb03-{uuid.uuid4().hex[:8]}"  # our backends in pg_stat_activity
info = await collect_machine_info(database_url=dsn)
admin = await asyncpg.connect(dsn)
print("profile:", settings.profile)

# %% [markdown]
# ## 1 · The seed's pool, exactly as written
# Its `acquire` says `conn = await self.pool.get_nowait()`. `get_nowait()` returns a
# connection, not something awaitable, so whenever an idle connection is waiting the
# acquire raises `TypeError`, *after* taking the connection off the queue. That
# connection stays open and counted, but nobody can reach it. Once `max_size` are lost,
# the next acquire waits forever on an empty queue while holding the pool's lock.
# `drive` borrows a connection eight times in a row (giving up on an acquire after 0.2 s):

# %%
# NBVAL_CHECK_OUTPUT
from perf.pool import SeedPool, drive, server_connections


async def connect_seed() -> asyncpg.Connection:
    return await asyncpg.connect(dsn, server_settings={"application_name": app_name + "-seed"})


seed = SeedPool(connect_seed, min_size=1, max_size=3)
await seed.initialize()
seed_outcomes = await drive(seed, attempts=8, timeout=0.2)
print(seed_outcomes)
assert seed_outcomes == ["TypeError", "ok", "TypeError", "ok", "TypeError", "hung", "hung", "hung"]
print(f"pool thinks it has {seed.size} connections: {seed.pool.qsize()} idle, {len(seed.in_use)} in use")
print("PostgreSQL sees:", await server_connections(admin, app_name + "-seed"))
await seed.close_everything()  # not in the seed: it has no close() at all

# %% [markdown]
# Three backends open, none reachable, and every later caller hangs: a deadlock built
# from one stray `await`. `perf.pool` runs the same drive cleanly:

# %%
# NBVAL_CHECK_OUTPUT
from perf.pool import create_pool

async with create_pool(dsn, min_size=1, max_size=3) as pool:
    ours_outcomes = await drive(pool, attempts=8, timeout=0.2)
    print(ours_outcomes)
    print("connections opened:", pool.stats().created)
assert ours_outcomes == ["ok"] * 8

# %% [markdown]
# ## 2 · Fix the typo, and the design flaws remain
# `SeedPoolTypoFixed` corrects only that line. The pool now works, but its lock is held
# across every `await`: while one caller opens a new connection (slow here: a 300 ms
# `init`, as when a busy server takes its time or codecs are introspected), every other
# caller waits for the lock, even though a free connection sits idle in the queue.

# %%
from perf.pool import SeedPoolTypoFixed, waits_behind_slow_connect


async def slow_init(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_sleep(0.3)")


async def connect_slowly() -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await slow_init(conn)
    return conn


seed_fixed = SeedPoolTypoFixed(connect_slowly, min_size=1, max_size=2)
await seed_fixed.initialize()
seed_behind = await waits_behind_slow_connect(seed_fixed, callers=20)
await seed_fixed.close_everything()

async with create_pool(dsn, min_size=1, max_size=2, init=slow_init) as pool:
    ours_behind = await waits_behind_slow_connect(pool, callers=20)

seed_p50, ours_p50 = seed_behind.waits.percentile(50), ours_behind.waits.percentile(50)
display(Markdown(
    f"Twenty quick callers arrived while one caller was connecting. Behind the seed's lock their median "
    f"acquire wait was **{seed_p50 * 1e3:.0f} ms** (the rest of the slow connect); with `perf.pool`, which "
    f"never holds a lock across an await, it was **{ours_p50 * 1e3:.2f} ms**: they shared the idle "
    f"connection while the new one was being opened. One burst each: a measurement of the lock's effect, not "
    "a finding."))

# %% [markdown]
# The seed's `release` also puts a connection back exactly as it is. Cancel a request in
# the middle of a transaction (a client disconnect, a timeout) and the next borrower
# inherits the aborted transaction. `perf.pool` waits for asyncpg to finish cancelling
# and rolls back, but only when a transaction is open, so a clean release costs no
# round trip.

# %%
# NBVAL_CHECK_OUTPUT
from perf.pool import next_borrower_after_cancel

seed_fixed = SeedPoolTypoFixed(lambda: asyncpg.connect(dsn), min_size=1, max_size=1)
await seed_fixed.initialize()
seed_says = await next_borrower_after_cancel(seed_fixed, query_seconds=2)
await seed_fixed.close_everything()
async with create_pool(dsn, min_size=1, max_size=1) as pool:
    ours_says = await next_borrower_after_cancel(pool, query_seconds=2)
    rolled_back = pool.stats().rolled_back
print("seed pool:", seed_says)
print("perf.pool:", ours_says)
print("rolled back on release:", rolled_back)
assert seed_says.startswith("in a transaction: True") and ours_says == "in a transaction: False; SELECT 1 -> 1"

# %% [markdown]
# ## 3 · The race, like beside like
# The same query (`SELECT $1::int`), borrowed and returned once per query, at several
# concurrencies. A pool that cleans a returned connection more thoroughly does more work,
# so pools are compared with the same cleaning: `perf.pool` in its three reset modes,
# asyncpg's pool with its default reset (`RESET ALL`, `UNLISTEN *`, ... on every release)
# and with a no-op reset (asyncpg 0.32 reads `reset=None` as "use the default", so the lean
# variant passes a coroutine that does nothing; asyncpg still rolls back an open
# transaction), plus connect per request and the typo-fixed seed pool. Every pool holds
# 10 connections, opened before timing. Rounds are interleaved, strategy order shuffled
# per round. What each one cleans before the next borrower:

# %%
from perf.pool import (
    ASYNCPG,
    ASYNCPG_NO_RESET,
    CONNECT,
    OURS,
    OURS_ALWAYS,
    OURS_NONE,
    WHAT_IS_RESET,
    Contenders,
    compare_strategies,
    race,
    rank_strategies,
)

with pd.option_context("display.max_colwidth", None):  # the whole sentence, not its first 50 characters
    display(pd.DataFrame({"resets on release": WHAT_IS_RESET}))

# %%
concurrencies = settings.pick([1, 10, 50], [1, 10, 50, 100])
queries = settings.pick(300, 5000)  # quick: shorter bursts, more rounds (a verdict needs rounds)
per_strategy = {name: queries for name in WHAT_IS_RESET}
per_strategy[CONNECT] = max(queries // 20, 50)
async with Contenders(dsn, max_size=10, application_name=app_name) as contenders:
    result = await race(contenders, concurrencies=concurrencies, rounds=settings.pick(5, 9), queries=per_strategy)
summary = result.summary()
readable(summary.pivot(index="strategy", columns="concurrency", values="median_qps"))

# %%
charts.line_over(summary, x="concurrency", y="median_qps", hue="strategy", band=("q1_qps", "q3_qps"),
                 title="Queries per second vs concurrency (10 connections per pool)",
                 ylabel="queries/s (median, IQR band)", logx=True, logy=True, info=info)
plt.show()

# %% [markdown]
# The pools ranked at each concurrency, then like beside like at concurrency 10 (our `always`
# resets a little more than asyncpg's: the role, temporary tables, SQL `PREPARE`s and sequence
# state too), the price of resetting on every release (each pool against itself without a
# reset), and what `reset="session"` (reset only after a statement that changed the session)
# costs against no reset at every concurrency. Each sentence is judged from this run's
# per-round ratios (`perf.measure.compare`: a direction only when the interval excludes
# no difference), so with few rounds many of them say *inconclusive*:

# %%
pools = [name for name in WHAT_IS_RESET if name != CONNECT]
vs_connect = compare_strategies(result, OURS, CONNECT, 10)
lines = [f"at concurrency {c}, {rank_strategies(result, c, strategies=pools)}" for c in concurrencies]
pairs_at_10 = [
    (OURS_NONE, ASYNCPG_NO_RESET, "neither resets the session"),
    (OURS_ALWAYS, ASYNCPG, "both reset the session on every release"),
    (OURS_ALWAYS, OURS_NONE, "the cost of resetting, perf.pool"),
    (ASYNCPG, ASYNCPG_NO_RESET, "the cost of resetting, asyncpg"),
]
lines += [f"{compare_strategies(result, variant, baseline, 10)} at concurrency 10 ({why})"
          for variant, baseline, why in pairs_at_10]
lines += [f"{compare_strategies(result, OURS, OURS_NONE, c)} at concurrency {c} (reset only when needed)"
          for c in concurrencies]
lines.append(f"{vs_connect} at concurrency 10: the >= 20x target is "
             + ("met" if vs_connect.kind == "faster" and vs_connect.low >= 20 else
                "not shown met (the interval's low end is below 20x)" if vs_connect.kind == "faster" else
                "not decided by this run"))
display(Markdown("\n".join(f"* {line[0].upper()}{line[1:]}." for line in lines)))

# %% [markdown]
# `reset="session"` watches the SQL text each borrower sends (`SET` without `LOCAL`,
# `set_config`, `pg_advisory_lock`, `LISTEN`, ...) and pays the reset round trip only
# after one of those; this race's query changes nothing, so it should cost what `none`
# costs: the lines above say, at each concurrency, whether this run could tell the two
# apart. What the text does not show escapes it (a change made inside a server function),
# so the default is `reset="always"`, at the price shown above. What each mode guarantees,
# measured just now on the server (a borrower leaves the thing in the first column; "clean"
# means the next borrower of the same connection sees what a new connection sees):

# %%
from perf.pool import reset_guarantees

guarantees = await reset_guarantees(dsn)
guarantees

# %% [markdown]
# ### How long does a caller wait for a connection?
# At the highest concurrency, 10 connections serve more callers than they can, so
# callers queue. The acquire wait, by percentile (for connect per request, "acquire"
# is the connect itself):

# %%
top = max(concurrencies)
charts.latency_percentiles({name: result.waits[(name, top)] for name in per_strategy},
                           title=f"Acquire wait by percentile at concurrency {top}", info=info)
plt.show()

# %%
from perf.measure import percentile_table

wait_table = percentile_table({name: result.waits[(name, top)] for name in per_strategy})
display(readable(wait_table))
pairs = [(OURS_NONE, ASYNCPG_NO_RESET), (OURS_ALWAYS, ASYNCPG)]
lines = [f"* {compare_strategies(result, ours, theirs, top, value='wait_p99_s')} (p99 over all rounds: "
         f"{wait_table.loc[ours, 'p99_ms']:.1f} vs {wait_table.loc[theirs, 'p99_ms']:.1f} ms)."
         for ours, theirs in pairs]
display(Markdown(
    f"At concurrency {top}, each burst's p99 acquire wait judged round by round:\n" + "\n".join(lines) + "\n\n"
    f"Waiting is unavoidable when {top} callers share 10 connections; a pool controls how the queue is "
    "served (here: the longest waiter gets the next returned connection) and how long each release "
    "keeps a connection away from it (a reset round trip adds to that)."))

# %% [markdown]
# ## 4 · Sizing: max_size too small, and too large
# Too small: callers queue. `perf.pool` at concurrency 50 with 1 to 20 connections:

# %%
from perf.pool import Contender, run_burst

SIZES = settings.pick([1, 2, 5, 10, 20], [1, 2, 5, 10, 20, 40])
sizing_rows = []
async with AsyncExitStack() as stack:  # every size's pool open at once, so rounds can interleave
    sized = {size: await stack.enter_async_context(create_pool(dsn, min_size=size, max_size=size)) for size in SIZES}
    for rnd in range(5):
        for max_size in (SIZES if rnd % 2 == 0 else SIZES[::-1]):
            pool = sized[max_size]
            burst = await run_burst(Contender(OURS, pool.acquire, pool.release), concurrency=50,
                                    queries=settings.pick(300, 5000))
            sizing_rows.append({"round": rnd, "max_size": max_size, "queries/s": burst.qps,
                                "wait p50 (ms)": burst.waits.percentile(50) * 1e3,
                                "wait p99 (ms)": burst.waits.percentile(99) * 1e3})
sizing_rounds = pd.DataFrame(sizing_rows)
sizing = sizing_rounds.groupby("max_size").median().drop(columns="round").reset_index()
readable(sizing)

# %%
charts.line_over(sizing.melt(id_vars="max_size", value_vars=["wait p50 (ms)", "wait p99 (ms)"]),
                 x="max_size", y="value", hue="variable", logx=True, logy=True,
                 title="Acquire wait vs pool size at concurrency 50 (medians over rounds)", ylabel="ms", info=info)
plt.show()
charts.line_over(sizing_rounds.groupby("max_size")["queries/s"].describe().reset_index().assign(curve="perf.pool"),
                 x="max_size", y="50%", hue="curve", band=("25%", "75%"), logx=True,
                 title="Throughput vs pool size at concurrency 50", ylabel="queries/s (median, IQR band)", info=info)
plt.show()

# %%
from perf.measure import rank

one, last = sizing.iloc[0], sizing.iloc[-1]
by_size = sizing_rounds.sort_values("round").groupby("max_size")["queries/s"].apply(list)
ranked = rank({f"max_size={size}": by_size[size] for size in SIZES}, larger_is_better=True)
display(Markdown(
    f"With a single connection the median caller waited {one['wait p50 (ms)']:.1f} ms, with "
    f"{int(last['max_size'])} connections {last['wait p50 (ms)']:.1f} ms (medians over "
    f"{sizing_rounds['round'].nunique()} interleaved rounds). Throughput on this {info.get('cpus', '?')}-CPU "
    f"machine, {ranked}. Past the point where the server's CPUs are busy, extra connections only move waiting "
    "from the pool's queue to the server's CPU queue"
    + (": this run cannot tell the sizes apart; the full profile's longer bursts (`PERF_PROFILE=full`) "
       "separate more of them." if not ranked.decided else ".")))

# %% [markdown]
# Too large: PostgreSQL accepts at most `max_connections` clients (every app instance's
# pool counts). A private server with `max_connections=20`, and two pools at
# concurrency 40: one with `max_size=40`, one with `max_size=15`.

# %%
from perf.pool import run_timeline

private_dir = tempfile.TemporaryDirectory()
private = EmbeddedPostgres(private_dir.name, max_connections=20)
private.start()

timelines = {}
for max_size in (40, 15):
    async with create_pool(private.url, min_size=0, max_size=max_size, timeout=2) as pool:
        async def work() -> None:
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT pg_sleep(0.01)")
        timelines[max_size] = await run_timeline(work, concurrency=40, seconds=settings.pick(1.5, 5), bucket=0.25)
        created = pool.stats().created
    tl = timelines[max_size]
    print(f"max_size={max_size}: {tl.frame['ok'].sum()} ok, {tl.frame['errors'].sum()} errors "
          f"{dict(tl.errors)}, connections opened {created}")

# %%
frame = pd.concat([tl.frame.assign(pool=f"max_size={size}") for size, tl in timelines.items()])
charts.line_over(frame.melt(id_vars=["t", "pool"], value_vars=["ok", "errors"]).assign(
    series=lambda d: d["pool"] + " " + d["variable"]), x="t", y="value", hue="series",
    title="max_connections=20: a pool bigger than the server allows", xlabel="seconds",
    ylabel="requests per 0.25 s", info=info)
plt.show()

too_big, fits = timelines[40], timelines[15]
display(Markdown(
    f"The oversized pool opened connections until PostgreSQL refused (*too many clients*), and "
    f"**{too_big.frame['errors'].sum()}** requests failed; it served {too_big.frame['ok'].sum()} requests "
    f"against {fits.frame['ok'].sum()} for the pool that fits, which had "
    f"{fits.frame['errors'].sum()} errors. Size pools so that max_size × instances stays below "
    "`max_connections` minus what admin tools and migrations need."))

# %% [markdown]
# ## 5 · Idle connections are closed down to min_size
# After a burst fills a pool, connections idle longer than `idle_timeout` (each shortened
# by up to 10% jitter, so they do not all close at once) are closed by the pool's
# background sweep, down to `min_size`. Max lifetime works the same way.

# %%
from perf.pool import sample_stats

idle_timeout = settings.pick(1.0, 5.0)
async with create_pool(dsn, min_size=2, max_size=20, idle_timeout=idle_timeout,
                       maintenance_interval=0.1) as pool:
    await run_burst(Contender(OURS, pool.acquire, pool.release), concurrency=20, queries=200)
    shrinking = await sample_stats(pool, seconds=idle_timeout * 2, every=0.1)
    idle_stats = pool.stats()
charts.line_over(shrinking.melt(id_vars="t", value_vars=["size", "idle"]), x="t", y="value", hue="variable",
                 title=f"Pool size after a burst (idle_timeout={idle_timeout:g} s, min_size=2)",
                 xlabel="seconds after the burst", ylabel="connections", info=info)
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print("size at the end:", idle_stats.size, "| every extra connection closed as idle:",
      idle_stats.expired_idle == idle_stats.created - 2)
assert idle_stats.size == 2 and idle_stats.expired_idle == idle_stats.created - 2

# %% [markdown]
# ## 6 · PostgreSQL restarts mid-run
# Five workers query through a 5-connection pool; after one second the private server
# is stopped and started again. Queries fail while it is down (connections lost, new ones
# refused); the pool discards the dead connections, opens new ones and carries on.

# %%
down_for = settings.pick(1.0, 2.0)
async with create_pool(private.url, min_size=5, max_size=5, timeout=1) as pool:
    async def work() -> None:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def restart_later() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(private.restart, down_for=down_for)

    restarting = asyncio.create_task(restart_later())
    restart_timeline = await run_timeline(work, concurrency=5, seconds=down_for + 3, bucket=0.1)
    await restarting
    restart_stats = pool.stats()

charts.line_over(restart_timeline.frame.melt(id_vars="t", value_vars=["ok", "errors"]), x="t", y="value",
                 hue="variable", title=f"PostgreSQL restart at t=1 s (down {down_for:g} s)",
                 xlabel="seconds", ylabel="queries per 0.1 s", logy=False, info=info)
plt.show()

recovered = restart_timeline.recovered_after(1.0)
display(Markdown(
    f"{restart_timeline.frame['errors'].sum()} queries failed ({dict(restart_timeline.errors)}); "
    f"the pool lost {restart_stats.lost} connections, opened {restart_stats.created} in all, and was "
    f"serving again {recovered:.1f} s after the restart began (down {down_for:g} s by design). "
    "Callers saw errors while the server was down, which is right: a pool cannot invent a database, "
    "but it must not keep handing out dead connections afterwards."))

# %%
# NBVAL_CHECK_OUTPUT
print("errors during the outage:", restart_timeline.frame["errors"].sum() > 0)
print("back to full size:", restart_stats.size == 5, "| nothing borrowed:", restart_stats.in_use == 0)
print("serving at the end:", restart_timeline.frame["ok"].iloc[-5:].sum() > 0)
assert restart_timeline.frame["errors"].sum() > 0 and restart_stats.size == 5 and restart_stats.in_use == 0
assert restart_timeline.frame["ok"].iloc[-5:].sum() > 0

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against the real PostgreSQL and Redis (in a scratch schema and key prefix it drops
# afterwards) and answers with what passed, what failed and a hint. Reference solutions are in
# `notebooks/solutions/`; try first. `exercises.progress()` shows what you have done.

# %% [markdown]
# ### Exercise 03.release: every borrowed connection goes back, even on an error
# `run_query(pool, x)` runs `SELECT 1 / x` on a connection from a `perf.pool` pool. The starter is
# the seed's acquire/release pair: find what an error does to it, and fix it.

# %%
# EXERCISE 03.release: edit this cell, then run the check below
async def run_query(pool, x):
    conn = await pool.acquire()
    value = await conn.fetchval("SELECT 1 / $1::int", x)
    await pool.release(conn)
    return value

# %%
await exercises.check("03.release", run_query, **URLS)

# %% [markdown]
# ### Exercise 03.timeout: a slow query cannot hold a connection forever
# `bounded_fetch(pool, sql, seconds)` must give up after `seconds` and leave the connection clean
# and back in the pool, ready for the next borrower.

# %%
# EXERCISE 03.timeout: edit this cell, then run the check below
async def bounded_fetch(pool, sql, seconds):
    async with pool.acquire() as conn:
        return await conn.fetch(sql)

# %%
await exercises.check("03.timeout", bounded_fetch, **URLS)

# %%
exercises.progress()

# %% [markdown]
# ## Take-aways
# * Never hold a lock across an `await` that waits: hand connections to waiters directly, first come first served.
# * Release must survive cancellation (`asyncio.shield`) and return connections clean:
#   roll back only when a transaction is open, and reset the session on every release
#   (`reset="always"`, the default: one round trip) unless you know your SQL changes no
#   session state inside functions (`reset="session"`: a clean release costs no round trip).
# * Compare pools with the same cleaning: a reset on every release is a round trip per query.
# * Bound everything: acquire timeout, `max_waiting`, `max_size` below `max_connections`,
#   idle timeout and max lifetime with jitter, and a `close()` that says who still holds a connection.

# %% tags=["plumbing"]
private.stop()
private_dir.cleanup()
await admin.close()
services.close()

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/03_pool/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("03_pool")
