"""Exercises for notebook 06: an upload handler that answers a full queue at once, and a
shutdown that runs what was accepted.

Both run the learner's code against a real ``asyncio.Queue`` drained by real worker tasks
(the syllabus' design), timed with the clock: the effects checked are 5x or more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from perf.aio import cancel_and_wait
from perf.config import Settings
from perf.exercises.core import Report, call_learner, exercise

Handler = Callable[[asyncio.Queue[Any], Any], Awaitable[tuple[int, dict[str, Any]]]]

#: A task takes this long; a handler that waits for a slot waits at least this long.
TASK_SECONDS = 0.2
#: An answer that did not wait for a slot comes back well within this (the task length / 4).
PROMPT_SECONDS = TASK_SECONDS / 4


async def _worker(queue: asyncio.Queue[Any], done: list[Any]) -> None:
    while True:
        item = await queue.get()
        try:
            await asyncio.sleep(TASK_SECONDS)
            done.append(item)
        finally:
            queue.task_done()


@exercise("06.backpressure", title="an upload handler that answers a full queue at once",
          answer="accept_upload",
          nudge="In section 1's table, how long did the seed's handler take to answer once the queue was full?")
async def backpressure(accept_upload: Handler, *, settings: Settings, **_ignored: Any) -> Report:
    """``accept_upload(queue, payload)`` returns ``(202, body)`` when it queued ``payload``, or
    ``(429, body)`` with ``body["retry_after"]`` (seconds, > 0) when the queue is full, and
    never waits for a slot. Six uploads arrive at once at a 2-slot queue with one worker."""
    report = Report(hint="Backpressure means saying no at once: look whether the queue has room without "
                         "waiting for it, and when it has none answer 429 with a time to come back, so the "
                         "client (not your server) holds the backlog.")
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)
    done: list[Any] = []
    worker = asyncio.create_task(_worker(queue, done))

    async def timed(i: int) -> tuple[Any, float]:
        started = time.perf_counter()
        answer = await call_learner(report, f"accept_upload(queue, {i})", accept_upload, queue, i, hint=report.hint)
        return answer, time.perf_counter() - started

    try:
        try:
            answers = await asyncio.wait_for(asyncio.gather(*(timed(i) for i in range(6))), 10)
        except TimeoutError:
            report.require("six uploads are answered within 10 s", False, "some never returned")
            return report
        await asyncio.wait_for(queue.join(), 10)
    finally:
        await cancel_and_wait(worker)
    shapes = [isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], dict) for a, _ in answers]
    if not report.require("each answer is (status, body dict)", all(shapes), repr(answers[0][0])[:80]):
        return report
    statuses = [a[0] for a, _ in answers]
    slowest = max(seconds for _, seconds in answers)
    report.require(f"every upload is answered within {PROMPT_SECONDS * 1e3:.0f} ms, full queue or not",
                   slowest < PROMPT_SECONDS, f"the slowest took {slowest * 1e3:,.0f} ms (a task takes "
                   f"{TASK_SECONDS * 1e3:.0f} ms)")
    report.require("uploads beyond the queue's room get 429", 429 in statuses, f"statuses {statuses}")
    accepted = sorted(i for i, (a, _) in enumerate(answers) if a[0] == 202)
    report.require("every 202 was queued and ran, and nothing answered 429 ran", sorted(done) == accepted,
                   f"202 for {accepted}, ran {sorted(done)}")
    retry = [a[1].get("retry_after") for a, _ in answers if a[0] == 429]
    report.require("each 429 says when to retry (retry_after > 0 seconds)",
                   bool(retry) and all(isinstance(r, int | float) and r > 0 for r in retry), f"{retry}")
    return report


ShutDown = Callable[[asyncio.Queue[Any], list[asyncio.Task[None]]], Awaitable[Any]]


@exercise("06.shutdown", title="a shutdown that runs every accepted task, then stops the workers",
          answer="shut_down",
          nudge="In section 1, how many of the accepted tasks had the seed's stop() run when the check gave up?")
async def shutdown(shut_down: ShutDown, *, settings: Settings, **_ignored: Any) -> Report:
    """``shut_down(queue, workers)`` returns once every item already in ``queue`` has been processed,
    with none of ``workers`` still running. Eight items wait for two workers (0.8 s of work); it gets 3 s."""
    report = Report(hint="Order matters: an accepted task is a promise, so wait until the queue has been worked "
                         "off (every item marked done), and only then stop the workers and wait for them to end.")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done: list[Any] = []
    for i in range(8):
        queue.put_nowait(i)
    workers = [asyncio.create_task(_worker(queue, done)) for _ in range(2)]
    try:
        try:
            await asyncio.wait_for(call_learner(report, "shut_down(queue, workers)", shut_down, queue, workers,
                                                hint=report.hint), 3)
            returned = True
        except TimeoutError:
            returned = False
        report.require("shut_down() returns within 3 s", returned, "" if returned else "it was still waiting")
        report.require("every accepted task ran", sorted(done) == list(range(8)), f"ran {len(done)} of 8")
        report.require("no worker is left running", all(w.done() for w in workers),
                       f"{sum(not w.done() for w in workers)} of 2 still running")
    finally:
        await cancel_and_wait(*workers)
    return report
