"""perf.queue.TaskQueue: bounded intake, workers, timeouts, retries, status, stats, drain on stop."""

from __future__ import annotations

import asyncio

import pytest

from perf.queue import QueueClosed, QueueFull, TaskQueue


async def _sleep_then(value, seconds=0.01):  # noqa: ANN001, ANN202
    await asyncio.sleep(seconds)
    return value


async def test_tasks_run_and_report_done():
    async with TaskQueue(workers=2, max_size=10) as queue:
        ids = [queue.submit(_sleep_then, i) for i in range(5)]
        records = [await queue.wait(i) for i in ids]
    assert [r.state for r in records] == ["done"] * 5
    assert [r.result for r in records] == list(range(5))
    stats = queue.stats()
    assert stats["done"] == 5 and stats["failed"] == 0 and stats["depth"] == 0
    assert stats["run_ms"]["p50"] is not None


async def test_full_queue_rejects_at_once_with_retry_after():
    gate = asyncio.Event()
    async with TaskQueue(workers=1, max_size=2) as queue:
        queue.submit(gate.wait)
        await asyncio.sleep(0.01)  # the worker holds the first task
        queue.submit(gate.wait)
        queue.submit(gate.wait)
        with pytest.raises(QueueFull) as info:
            queue.submit(gate.wait)
        assert info.value.retry_after >= 1
        assert queue.stats()["rejected"] == 1
        gate.set()


async def test_failure_is_recorded_with_its_error_and_retried():
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"boom {len(calls)}")
        return "ok"

    async def broken() -> None:
        raise ValueError("bad payload")

    async with TaskQueue(workers=1, retries=2, backoff=0.001) as queue:
        ok = await queue.wait(queue.submit(flaky))
        bad = await queue.wait(queue.submit(broken))
    assert ok.state == "done" and ok.attempts == 3
    assert bad.state == "failed" and bad.error == "ValueError: bad payload" and bad.attempts == 3
    assert queue.stats()["retried"] == 4


async def test_timeout_fails_the_task_and_frees_the_worker():
    async with TaskQueue(workers=1, timeout=0.05) as queue:
        slow = queue.submit(asyncio.sleep, 10)
        quick = queue.submit(_sleep_then, "next")
        assert (await queue.wait(slow)).error == "timed out after 0.05s"
        assert (await queue.wait(quick)).result == "next"


async def test_stop_drains_every_accepted_task_and_refuses_new_ones():
    queue = await TaskQueue(workers=2, max_size=50).start()
    ids = [queue.submit(_sleep_then, i, 0.02) for i in range(20)]
    report = await queue.stop(timeout=5)
    assert report.clean and report.finished == 20
    assert all(queue.status(i).state == "done" for i in ids)
    with pytest.raises(QueueClosed):
        queue.submit(_sleep_then, 1)


async def test_stop_reports_tasks_it_could_not_finish():
    queue = await TaskQueue(workers=1, max_size=5).start()
    running = queue.submit(asyncio.sleep, 30)
    queued = queue.submit(asyncio.sleep, 30)
    await asyncio.sleep(0.01)
    report = await queue.stop(timeout=0.1)
    assert sorted(report.unfinished) == sorted([running, queued])
    assert queue.status(queued).state == "failed" and "stop(timeout=0.1)" in queue.status(queued).error
    assert queue.stats()["failed"] == 2


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="workers=0"):
        TaskQueue(workers=0)
    with pytest.raises(ValueError, match="timeout=0"):
        TaskQueue(timeout=0)
