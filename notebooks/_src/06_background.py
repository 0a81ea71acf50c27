# %% [markdown]
# # 06 · Background work: the syllabus' task queue, the corrected one, the durable one
#
# The syllabus accepts an image upload, answers at once and processes it later on an
# in-process task queue. This notebook runs that queue as written, measures its three failure
# modes, then the corrected in-memory queue and the durable one the product API uses (tasks
# committed to PostgreSQL before the `202`, so a crash loses none).
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL
# and Redis itself. How long it took in this run is printed by its last cell.

# %% tags=["plumbing"]
import time

import pandas as pd
from IPython.display import Markdown, display

from perf import exercises
from perf.config import get_settings
from perf.measure import readable
from perf.runs import replay_note, replayable
from perf.services import ensure_services

notebook_started = time.perf_counter()
settings = get_settings()
services = ensure_services(settings)
SCHEMA = "nb06_queue"  # this notebook's PostgreSQL schemas start with it
print("profile:", settings.profile)
if note := replay_note():  # PERF_REPLAY=<run id>: every measuring step below returns that run's result
    display(Markdown(f"**{note}**"))

# %% [markdown]
# ## 1 · The syllabus' queue against the corrected one
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

from perf.queue import crash_experiment, full_queue_requests, shutdown_drain


async def measure_failures():
    full = pd.concat([await full_queue_requests(kind, requests=6, workers=1, max_size=4, task_seconds=0.2)
                      for kind in ("naive", "corrected")], ignore_index=True)
    stops = {r.queue: r for r in [await shutdown_drain(kind, tasks=8, workers=2, task_seconds=0.05, timeout=2.0)
                                  for kind in ("naive", "corrected")]}
    seed_crash = await asyncio.to_thread(crash_experiment, "naive", services.database_url, tasks=30, delay=0.05,
                                         schema=f"{SCHEMA}_crash")
    return full, stops, seed_crash


full, stops, seed_crash = await replayable("failures", measure_failures)
readable(full)

# %%
by_kind = full.groupby("queue")["seconds"]
naive_stop, fixed_stop = stops["naive"], stops["corrected"]
retry_afters = full.loc[(full.queue == "corrected") & (full.status == 429), "retry_after"].dropna()  # 202s have none
display(Markdown(
    f"With the queue full, the seed's handler answered its six uploads "
    f"`{sorted(set(full.loc[full.queue == 'naive', 'status']))}` "
    f"after **{by_kind.min()['naive'] * 1e3:,.0f} to {by_kind.max()['naive'] * 1e3:,.0f} ms**: each request "
    f"waited for a worker to free a slot, so by construction the client's wait lengthens with the backlog (one "
    f"round here shows the waits, not a trend; a client timeout shorter "
    f"than that turns it into an error, after the work was queued anyway). The corrected queue answered "
    f"`{sorted(set(full.loc[full.queue == 'corrected', 'status']))}`"
    + (f" (each 429 with `Retry-After: {', '.join(sorted(set(retry_afters)))}`)" if len(retry_afters) else "")
    + " in at most "
    f"**{by_kind.max()['corrected'] * 1e3:,.1f} ms**: it never waited for a slot (one round of six requests; "
    "the exercise at the end checks the same rule on your handler). "
    f"On shutdown with {naive_stop.accepted} tasks accepted, the seed's `stop()` "
    + ("**had not returned** " if not naive_stop.returned else "returned ")
    + f"after {naive_stop.seconds:.1f} s and {naive_stop.completed} of {naive_stop.accepted} tasks had run; the "
    f"corrected `stop()` " + ("drained" if fixed_stop.returned else "did not drain")
    + f" {fixed_stop.completed} of {fixed_stop.accepted} in {fixed_stop.seconds:.2f} s. And a SIGKILL of a "
    f"worker running the seed's queue right after it acknowledged {seed_crash.accepted} uploads: "
    f"**{seed_crash.completed} completed, {seed_crash.lost} lost**."))

# %% [markdown]
# ## 2 · Durable: what a commit per task costs, and what it buys
# The corrected queue still keeps its tasks in memory. The durable queue
# (`perf.queue.durable.DurableQueue`, on pgqueuer) commits each task to PostgreSQL before the
# 202, so another worker picks it up after a crash. Side by side (the measurements of
# `python -m perf.bench.queue`, small sizes): the latency of one enqueue (what a `POST /uploads`
# waits before its 202), throughput with 8 concurrent submitters and a no-op task, and the crash
# experiment (a worker acknowledges tasks one by one and is SIGKILLed; how many ever complete).

# %%
from perf.queue import compare_queues

queues = await replayable("queues", lambda: compare_queues(
    services.database_url, rounds=settings.pick(3, 5),  # ratios need >= 3 rounds
    latency_tasks=settings.pick(100, 1000), throughput_tasks=settings.pick(400, 8000),
    crash_tasks=settings.pick(30, 200)))
readable(queues)

# %%
mem, dur = queues.loc["memory"], queues.loc["durable"]
display(Markdown(
    f"An enqueue took **{mem.p50_ms * 1e3:,.0f} µs** (p50; p99 {mem.p99_ms * 1e3:,.0f} µs) in process and "
    f"**{dur.p50_ms:,.2f} ms** (p99 {dur.p99_ms:,.2f} ms) durable, a commit to PostgreSQL: "
    f"the durable median is **{dur.p50_ms / mem.p50_ms:,.0f}x** the in-process one "
    f"(durable rounds ranged {dur.p50_ms_min:,.2f}-{dur.p50_ms_max:,.2f} ms, in-process "
    f"{mem.p50_ms_min * 1e3:,.0f}-{mem.p50_ms_max * 1e3:,.0f} µs). "
    f"Throughput: {mem.tasks_per_s:,.0f} tasks/s in process, {dur.tasks_per_s:,.0f} durable "
    f"(a ratio of medians of {mem.tasks_per_s / dur.tasks_per_s:,.0f}x), "
    f"{queues.loc['durable~', 'tasks_per_s']:,.0f} with the "
    f"approximate depth limit. `compare_queues` keeps each queue's median and range over the rounds, not the "
    "rounds themselves, so these ratios are measurements, not judged comparisons. What the commit buys: after "
    "the SIGKILL the in-process queue completed "
    f"**{mem.completed:.0f} of {mem.accepted:.0f}** accepted tasks, the durable one **{dur.completed:.0f} of "
    f"{dur.accepted:.0f}** (a fresh consumer took them over within {dur.recovery_s:.1f} s, the lease included)."))

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against a real `asyncio.Queue` drained by real worker tasks and answers with what passed, what
# failed, and a hint if you ask for one (`hint=1`, then `hint=2`). Reference solutions are in
# `notebooks/solutions/`; try first.

# %% [markdown]
# ### Exercise 06.backpressure: an upload handler that answers a full queue at once
# Write `accept_upload(queue, payload)` for an `asyncio.Queue` with a size limit. It returns
# `(202, body)` when it queued `payload`, or `(429, body)` with `body["retry_after"]` (seconds,
# more than 0) when the queue is full; an upload answered 429 must not be queued. It never
# waits for a slot: the check sends six uploads at once to a 2-slot queue drained by one worker
# (0.2 s a task), and every answer must come back within 50 ms. The starter is the syllabus' handler.

# %%
# EXERCISE 06.backpressure: edit this cell, then run the check below
async def accept_upload(queue, payload):
    await queue.put(payload)  # the syllabus: wait for a slot
    return 202, {"queued": True}

# %%
await exercises.check("06.backpressure", accept_upload)

# %% [markdown]
# ### Exercise 06.shutdown: a shutdown that runs every accepted task
# Write `shut_down(queue, workers)`: eight uploads are queued and two worker tasks process them
# (each takes an item, works 0.2 s, marks it done). It must return once every queued item has
# been processed, with no worker task still running; the check gives it 3 s. The starter
# stops the workers first, as the syllabus' `stop()` effectively does.

# %%
# EXERCISE 06.shutdown: edit this cell, then run the check below
async def shut_down(queue, workers):
    for worker in workers:
        worker.cancel()  # stop the workers ...
    await queue.join()  # ... then wait for the queue to empty

# %%
await exercises.check("06.shutdown", shut_down)

# %%
exercises.progress()

# %%
services.close()
print(f"This notebook ran in {time.perf_counter() - notebook_started:,.0f} s ({settings.profile} profile).")

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/06_background/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("06_background")
