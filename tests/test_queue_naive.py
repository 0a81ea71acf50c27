"""The syllabus' TaskQueue as written fails the three ways notebook 05 shows, and the corrected queue does not:
a full queue makes the request wait (vs an immediate 429), stop() never returns with tasks queued (vs a drain),
and a crash loses what was accepted."""

from __future__ import annotations

import asyncio

import pytest

from perf.queue.demo_backpressure import full_queue_requests, shutdown_drain
from perf.queue.demo_crash import crash_experiment
from perf.queue.naive import TaskQueue, process_image
from tests._api_helpers import unique_name


async def test_the_seed_queue_runs_tasks_while_not_full():
    queue = TaskQueue(max_workers=2, max_queue_size=10)
    await queue.start()
    results: list[str] = []

    async def task() -> None:
        results.append(await process_image(b"x", seconds=0.01))

    for _ in range(4):
        await queue.add_task(task)
    await asyncio.wait_for(queue.queue.join(), 5)
    assert results == ["processed"] * 4
    await queue.stop()  # nothing queued: the seed's stop returns
    assert queue.workers == []


async def test_a_full_seed_queue_makes_the_request_wait_the_corrected_one_answers_429_at_once():
    naive = await full_queue_requests("naive", requests=4, workers=1, max_size=2, task_seconds=0.2)
    corrected = await full_queue_requests("corrected", requests=4, workers=1, max_size=2, task_seconds=0.2)
    assert list(naive["status"]) == [200] * 4
    assert list(corrected["status"]) == [429] * 4
    assert corrected["retry_after"].astype(int).min() >= 1
    # the last naive request waited for ~4 tasks of 0.2 s; the 429s come back without waiting on any
    assert naive["seconds"].max() > 0.5
    assert naive["seconds"].max() > 5 * corrected["seconds"].max()


async def test_the_seed_stop_never_returns_with_tasks_queued_the_corrected_one_drains():
    naive = await shutdown_drain("naive", tasks=6, workers=2, task_seconds=0.05, timeout=1.0)
    assert not naive.returned and naive.completed == 2 and naive.lost == 4  # only the running ones finished
    corrected = await shutdown_drain("corrected", tasks=6, workers=2, task_seconds=0.05, timeout=5.0)
    assert corrected.returned and corrected.completed == 6 and corrected.lost == 0


def test_a_crash_loses_every_task_the_seed_queue_accepted(database_url: str):
    result = crash_experiment("naive", database_url, tasks=12, delay=1.0, schema=unique_name("t_naive"))
    assert result.accepted == 12 and result.lost >= 8  # 4 workers: at most 4 could finish in time


@pytest.mark.parametrize("call", [lambda: full_queue_requests("seed"), lambda: shutdown_drain("other")])  # type: ignore[arg-type]
async def test_unknown_kind_is_refused(call):  # noqa: ANN001
    with pytest.raises(ValueError, match="must be one of"):
        await call()
