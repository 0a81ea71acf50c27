"""DurableQueue against real PostgreSQL: durable intake, status from anywhere, retries to dead,
a depth limit shared by processes, retention, and a stop that returns unfinished work."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from perf.queue import QueueClosed, QueueFull
from perf.queue.durable import DurableQueue, QueueUnavailable, TaskExpired, new_task_id, task_id_time


async def echo(payload: bytes) -> dict[str, Any]:
    await asyncio.sleep(0.005)
    return {"bytes": len(payload), "text": payload.decode()}


async def always_fails(payload: bytes) -> None:
    raise ValueError(f"cannot process {payload!r}")


async def test_a_task_is_done_and_its_result_is_readable_from_another_queue(database_url: str, pg_schema: str):
    async with DurableQueue(database_url, schema=pg_schema, handlers={"echo": echo}) as worker, \
            DurableQueue(database_url, schema=pg_schema, workers=0) as reader:
        task_id = await worker.submit("echo", b"hello")
        record = await reader.wait(task_id, timeout=10)
        assert record["state"] == "done" and record["attempts"] == 1 and record["error"] is None
        assert record["result"] == {"bytes": 5, "text": "hello"}
        assert record["enqueued_at"] <= record["started_at"] <= record["finished_at"]
        assert (await reader.stats())["states"]["done"] == 1


async def test_a_task_that_always_fails_is_retried_then_dead_with_its_error(database_url: str, pg_schema: str):
    async with DurableQueue(database_url, schema=pg_schema, handlers={"bad": always_fails}, max_attempts=3,
                            backoff=0.3) as queue:
        task_id = await queue.submit("bad", b"x")
        states = set()
        for _ in range(1000):
            record = await queue.status(task_id)
            assert record is not None
            states.add(record["state"])
            if record["state"] == "dead":
                break
            await asyncio.sleep(0.01)
        assert record["state"] == "dead" and record["attempts"] == 3
        assert record["error"] == "ValueError: cannot process b'x'"
        assert "failed" in states  # waiting for its retry (backoff 0.3 s, then 0.6 s)
        # The worker counts a task once its UPDATE has answered; this loop can read the committed
        # row a moment before that, so give the count the same chance (it never exceeds 1).
        for _ in range(200):
            if queue.counts["dead"]:
                break
            await asyncio.sleep(0.005)
        assert queue.counts["retried"] == 2 and queue.counts["dead"] == 1


async def test_the_depth_limit_holds_across_two_queues_submitting_at_once(database_url: str, pg_schema: str):
    async with DurableQueue(database_url, schema=pg_schema, workers=0, max_depth=7) as one, \
            DurableQueue(database_url, schema=pg_schema, workers=0, max_depth=7) as two:
        results = await asyncio.gather(*(q.submit("echo", b"%d" % i) for i in range(20) for q in (one, two)),
                                       return_exceptions=True)
    accepted = [r for r in results if isinstance(r, str)]
    rejected = [r for r in results if isinstance(r, QueueFull)]
    assert len(accepted) == 7 and len(rejected) == 33
    assert rejected[0].retry_after >= 1


async def test_without_exact_depth_sequential_submits_still_stop_at_the_limit(database_url: str, pg_schema: str):
    async with DurableQueue(database_url, schema=pg_schema, workers=0, max_depth=2, exact_depth=False) as queue:
        await queue.submit("echo", b"1")
        await queue.submit("echo", b"2")
        with pytest.raises(QueueFull, match="2 tasks waiting"):
            await queue.submit("echo", b"3")


async def test_finished_results_expire_after_the_retention(database_url: str, pg_schema: str):
    async with DurableQueue(database_url, schema=pg_schema, handlers={"echo": echo}, retention=1.0) as queue:
        task_id = await queue.submit("echo", b"short-lived")
        assert (await queue.wait(task_id))["state"] == "done"
        await asyncio.sleep(1.2)
        with pytest.raises(TaskExpired, match="retention=1s"):
            await queue.status(task_id)
        assert await queue.status(new_task_id()) is None  # a fresh id nobody submitted: unknown, not expired
        assert await queue.status("not-an-id") is None


async def test_stop_returns_running_work_to_the_queue_and_another_worker_finishes_it(database_url: str,
                                                                                      pg_schema: str):
    release = asyncio.Event()

    async def slow(payload: bytes) -> str:
        await release.wait()
        return "finished"

    first = await DurableQueue(database_url, schema=pg_schema, handlers={"slow": slow}, workers=2).start()
    ids = [await first.submit("slow", b"%d" % i) for i in range(2)]
    for _ in range(200):
        if (await first.stats())["states"]["running"] == 2:
            break
        await asyncio.sleep(0.02)
    returned = await first.stop(timeout=0.3)
    assert sorted(returned) == sorted(ids)
    with pytest.raises(QueueClosed):
        await first.submit("slow", b"late")
    release.set()
    async with DurableQueue(database_url, schema=pg_schema, handlers={"slow": slow}) as second:
        for task_id in ids:
            record = await second.wait(task_id, timeout=10)
            assert record["state"] == "done" and record["result"] == "finished" and record["attempts"] == 2


def test_task_ids_carry_their_creation_time():
    task_id = new_task_id()
    created = task_id_time(task_id)
    assert len(task_id) == 32 and created is not None
    assert task_id_time("x" * 32) is None and task_id_time("abc") is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_depth": 0}, "max_depth=0 must be an integer >= 1"),
    ({"lease": 0}, "lease=0 must be > 0 seconds"),
    ({"schema": "a-b"}, "schema='a-b' must be a plain identifier"),
])
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        DurableQueue("postgresql://localhost/x", **kwargs)


async def test_a_task_whose_delivery_vanished_is_enqueued_again(database_url: str, pg_schema: str,
                                                               pg_conn: asyncpg.Connection):
    async with DurableQueue(database_url, schema=pg_schema, workers=0) as intake:
        task_id = await intake.submit("echo", b"orphan")
    await pg_conn.execute("DELETE FROM pgqueuer")  # the job is gone; the task row still says queued
    async with DurableQueue(database_url, schema=pg_schema, handlers={"echo": echo}, lease=0.3) as queue:
        record = await queue.wait(task_id, timeout=10)
    assert record["state"] == "done" and record["result"] == {"bytes": 6, "text": "orphan"}


async def test_the_consumer_reconnects_after_its_connections_are_killed(database_url: str, pg_schema: str,
                                                                        pg_conn: asyncpg.Connection):
    async with DurableQueue(database_url, schema=pg_schema, handlers={"echo": echo}, lease=1.0) as queue:
        assert (await queue.wait(await queue.submit("echo", b"before"), timeout=10))["state"] == "done"
        killed = await pg_conn.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE application_name = $1", f"perf-durable-queue-{pg_schema}")
        assert killed >= 2  # the pool's and the consumer's
        for _ in range(50):  # the pool notices a dead connection on its next use
            try:
                task_id = await queue.submit("echo", b"after")
                break
            except QueueUnavailable:
                await asyncio.sleep(0.1)
        record = await queue.wait(task_id, timeout=20)
    assert record["state"] == "done" and record["result"]["text"] == "after"


async def test_a_submit_whose_connection_is_cut_mid_transaction_is_accepted_once(database_url: str, pg_schema: str,
                                                                                 pg_conn: asyncpg.Connection):
    """A restart's cut, on one backend: the submit is settled (not committed: run again), not a 503."""
    async with DurableQueue(database_url, schema=pg_schema, workers=0) as queue:
        locker = await asyncpg.connect(database_url, server_settings={"search_path": pg_schema})
        try:
            hold = locker.transaction()
            await hold.start()
            await locker.execute("LOCK TABLE durable_tasks IN ACCESS EXCLUSIVE MODE")  # the submit waits inside
            submit = asyncio.create_task(queue.submit("echo", b"cut"))
            for _ in range(500):
                pid = await pg_conn.fetchval("SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                                             "AND wait_event_type = 'Lock'", f"perf-durable-queue-{pg_schema}")
                if pid is not None:
                    break
                await asyncio.sleep(0.01)
            assert await pg_conn.fetchval("SELECT pg_terminate_backend($1)", pid)
            await hold.rollback()
            task_id = await submit
        finally:
            await locker.close()
        assert [r["id"] for r in await pg_conn.fetch("SELECT id FROM durable_tasks")] == [task_id]
        assert queue.counts["submitted"] == 1
