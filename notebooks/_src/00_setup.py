# %% [markdown]
# # 00 · Setup: real services and the measurement kit
#
# Every notebook in this workbook measures techniques on **real** PostgreSQL and Redis.
# With no configuration the workbook starts its own throwaway pair (or reuses the one
# `python3 tasks.py workbook` / `python -m perf services up` already started);
# set `DATABASE_URL` / `REDIS_URL` to use servers you run yourself.
#
# This notebook checks that everything works: services, versions, one measurement, one chart.
#
# **Before you start.** The notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. In run 20261205-025021-workbook (quick profile, the default; a 2-core machine shared with
# other work, load average ~5) it ran in **7 s**; the full profile took about **5 seconds** on a
# 2-core machine (measured before runs had ids). The profile is read once, when the
# kernel starts: to switch, start JupyterLab as `PERF_PROFILE=full python3 tasks.py lab`
# (or `quick`) and restart the kernel.

# %%
from perf.config import get_settings
from perf.services import ensure_services

settings = get_settings()
services = ensure_services(settings)
print("profile:", settings.profile)
print("started here" if services.started else "reusing running servers",
      f"({services.startup_seconds:.2f}s)" if services.started else "")

# %% [markdown]
# ## What we measure on
# Every result carries the machine and server versions, because a number without
# its context cannot be compared with anything.

# %%
from perf.measure import collect_machine_info

info = await collect_machine_info(database_url=services.database_url, redis_url=services.redis_url)
info

# %%
from IPython.display import Markdown

Markdown(
    f"**Which servers?** The database here is **{info['postgres']}**. \"Redis\" in this workbook means the "
    f"Redis protocol and commands; the server that speaks them in this run is **{info['redis']}**. "
    "Valkey is the Linux Foundation's open-source fork of Redis 7.2: same protocol and commands, so redis-py "
    "and every technique here work on either (set `REDIS_URL` to measure against a Redis of your own)."
    if info["redis"].startswith("Valkey") else
    f"**Which servers?** The database here is **{info['postgres']}**, and \"Redis\" is **{info['redis']}**."
)

# %% [markdown]
# ## A deterministic fact
# A round trip through both servers. This cell's output is compared by nbval.

# %%
# NBVAL_CHECK_OUTPUT
import asyncpg
import redis.asyncio as redis

conn = await asyncpg.connect(services.database_url)
cache = redis.from_url(services.redis_url)
await cache.set("workbook:setup:answer", 42, ex=60)
print("PostgreSQL says", await conn.fetchval("SELECT 6 * 7"))
print("Redis says", int(await cache.get("workbook:setup:answer")))

# %% [markdown]
# ## One tiny measurement
# `compare_async` runs the variants **interleaved** (round 1: A, B; round 2: B, A; ...),
# so drift on a shared machine hits both alike, and reports the ratio round by round.

# %%
from perf.measure import compare_async, readable

comparison = await compare_async(
    {
        "PostgreSQL SELECT 1": lambda: conn.fetchval("SELECT 1"),
        "Redis PING": cache.ping,
    },
    warmup=20,
    repeat=settings.pick(30, 200),
    number=10,
)
summary = comparison.summary()
readable(comparison.table("µs"))  # median and quartiles to 3 significant figures

# %%
import matplotlib.pyplot as plt

from perf import charts
from perf.runs import current_run

current_run()  # this notebook's run: every chart below is recorded into it
charts.bar_with_spread(summary, title="One round trip: PostgreSQL vs Redis", unit="µs", info=info)
plt.show()

# %%
from IPython.display import Markdown

pg_us = summary.loc["PostgreSQL SELECT 1", "median"] * 1e6
redis_us = summary.loc["Redis PING", "median"] * 1e6
verdict = comparison.verdict("PostgreSQL SELECT 1", "Redis PING", a="PostgreSQL", b="Redis")
if verdict.kind == "faster":
    why = ("On loopback neither server does real work, so what we timed is mostly the *client library* "
           "and the event loop, and asyncpg (written in Cython) does less per call than redis-py's pure-Python "
           "asyncio client.")
elif verdict.kind == "slower":
    why = ("Redis answers `PING` without parsing or planning anything, while PostgreSQL parses and runs a "
           "statement; here that outweighed the client libraries (asyncpg is Cython, redis-py's asyncio "
           "client pure Python).")
elif verdict.kind == "same":
    why = ("On loopback neither server does real work: both round trips are mostly client library and "
           "event loop, and here they cost the same.")
else:
    why = ("On loopback neither server does real work: both round trips are mostly client library and event "
           "loop, and this run's rounds cannot say which costs more.")
Markdown(
    f"In this run a `SELECT 1` took **{pg_us:.0f} µs** and a `PING` **{redis_us:.0f} µs** (medians): "
    f"{verdict}. {why} "
    "Keep that in mind later: a cache hit can never be cheaper than the round trip to the cache."
)

# %% [markdown]
# Later notebooks build on exactly this kit: warm-up, repeats, median with spread,
# and ratios measured side by side in one run.

# %%
await conn.close()
await cache.aclose()
services.close()

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/00_setup/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("00_setup")
