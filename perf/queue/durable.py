"""DurableQueue: background work written to PostgreSQL before it is acknowledged.

The in-process :class:`~perf.queue.TaskQueue` loses every accepted task its process held
when that process dies. Here :meth:`DurableQueue.submit` returns only after the task is
committed to PostgreSQL (the system of record), so a ``202`` is a promise any worker keeps:

* delivery is `pgqueuer <https://github.com/janbjorge/pgqueuer>`_ (``FOR UPDATE SKIP
  LOCKED`` dequeue, ``LISTEN/NOTIFY`` wake-up, a heartbeat lease: a job whose worker
  stops beating for ``lease`` seconds is picked again by another one: at-least-once);
* this module keeps one row per task in ``<schema>.durable_tasks`` (state, attempts,
  timestamps, result or error), so ``status()`` answers the same from every process
  and after a restart; handlers run at most to ``done`` once (a duplicate delivery of a
  finished task is skipped), so they must be idempotent;
* a failed attempt is retried after ``backoff * 2**(attempt-1)`` s; after
  ``max_attempts`` it is ``dead`` with its last error (also when the worker running it
  died each time: the attempt counter is bumped before the handler runs);
* ``max_depth`` unfinished tasks at most, counted in PostgreSQL under an advisory lock,
  so the limit holds across processes (:class:`~perf.queue.QueueFull` beyond it);
* finished tasks are kept ``retention`` s, then ``status()`` raises :class:`TaskExpired`;
* a janitor re-enqueues unfinished tasks whose pgqueuer job has vanished (pgqueuer drops a
  job whose handler failed outside our control), so no accepted task is stranded.

>>> async with DurableQueue(url, schema="api", handlers={"upload": process}) as queue:
...     task_id = await queue.submit("upload", b"...")   # durable once this returns
...     (await queue.status(task_id))["state"]           # queued | running | done | failed | dead
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
from pgqueuer import Job, Queries, QueueManager, RetryRequested

from perf.aio import cancel_and_wait
from perf.compat.pgqueuer import SchemaQueries
from perf.pool.outcome import run_write
from perf.pool.unavailable import is_unavailable
from perf.queue.status import QueueClosed, QueueFull, QueueUnavailable, TaskExpired, new_task_id, task_id_time

logger = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[Any]]
UNFINISHED = ("queued", "running", "failed")
_LOCK_BASE = 7_014_000  # advisory lock ids: + the schema name's character sum mod 1000 (install, depth check)
#: The orphan sweep's lock is the schema's lock + this (a different lock, so sweeping never waits on intake).
_SWEEP_LOCK_OFFSET = 1000
#: A full queue's ``Retry-After``: about this many seconds per queued task per worker (at least 1 s).
_RETRY_SECONDS_PER_TASK = 0.05

_DDL = """
CREATE TABLE IF NOT EXISTS durable_tasks (
    id text PRIMARY KEY,
    name text NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'dead')),
    attempts int NOT NULL DEFAULT 0,
    job_id bigint,
    payload bytea,
    result jsonb,
    error text,
    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS durable_tasks_unfinished ON durable_tasks (enqueued_at)
    WHERE state IN ('queued', 'running', 'failed');
CREATE INDEX IF NOT EXISTS durable_tasks_finished ON durable_tasks (finished_at) WHERE finished_at IS NOT NULL;
"""


class DurableQueue:
    """PostgreSQL-backed task queue; see the module docstring.

    ``handlers``: task name -> ``async def handler(payload: bytes) -> JSON value``.
    ``workers``: tasks this process runs at once (0: enqueue and read status only).
    ``timeout``: seconds one attempt may run (then it counts as failed).
    ``lease``: seconds without a heartbeat after which another worker takes a job over.
    ``exact_depth``: hold ``max_depth`` exactly across processes by serialising enqueues (True),
    or let concurrent enqueues overshoot it a little and commit in parallel (False).
    """

    def __init__(self, database_url: str, *, schema: str = "public", handlers: Mapping[str, Handler] | None = None,
                 workers: int = 4, max_depth: int = 1000, max_attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 30.0, lease: float = 10.0, retention: float = 3600.0,
                 exact_depth: bool = True) -> None:
        if not database_url:
            raise ValueError("database_url is required: pass services.database_url")
        if not schema.isidentifier():
            raise ValueError(f"schema={schema!r} must be a plain identifier such as 'api'")
        for name, value, low in (("workers", workers, 0), ("max_depth", max_depth, 1),
                                 ("max_attempts", max_attempts, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} must be an integer >= {low}")
        for name, number in (("timeout", timeout), ("lease", lease), ("retention", retention)):
            if not number > 0:
                raise ValueError(f"{name}={number!r} must be > 0 seconds")
        if backoff < 0:
            raise ValueError(f"backoff={backoff!r} must be >= 0 seconds")
        self.database_url, self.schema, self.handlers = database_url, schema, dict(handlers or {})
        self.exact_depth = exact_depth
        self.workers, self.max_depth, self.max_attempts = workers, max_depth, max_attempts
        self.backoff, self.timeout, self.lease, self.retention = float(backoff), float(timeout), float(lease), \
            float(retention)
        self._pgqueuer = SchemaQueries(schema)  # pgqueuer's tables and NOTIFY channel in this schema
        self._server_settings = {"search_path": schema, "application_name": f"perf-durable-queue-{schema}"}
        self._lock = _LOCK_BASE + sum(map(ord, schema)) % 1000
        self._pool: asyncpg.Pool | None = None
        self._manager: QueueManager | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._running: set[str] = set()  # handler running here
        self._held: set[str] = set()  # delivered here and not finished (running or waiting for a slot)
        self._jobs: set[asyncio.Task[Any]] = set()  # pgqueuer's tasks running our handler
        self._slots = asyncio.Semaphore(max(workers, 1))
        self._accepting = False
        self._stopped = False
        self._stopping = asyncio.Event()
        self.counts = {"submitted": 0, "rejected": 0, "done": 0, "retried": 0, "dead": 0, "skipped": 0}

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> DurableQueue:
        """Create the tables (once, under a lock), open the pool and start consuming (idempotent)."""
        if self._stopped:
            raise QueueClosed("this DurableQueue was stopped; create a new one")
        if self._pool is not None:
            return self
        # min_size=0: asyncpg's pool then opens connections only on demand; with a floor it
        # reconnects in the background and logs a traceback per failed attempt while PostgreSQL is down.
        self._pool = await asyncpg.create_pool(self.database_url, min_size=0, max_size=max(2, self.workers + 2),
                                               server_settings=self._server_settings)
        await self._install()
        if self.workers:
            self._consumer = asyncio.create_task(self._consume(), name="durable-queue-consumer")
            self._janitor = asyncio.create_task(self._janitor_loop(), name="durable-queue-janitor")
        self._accepting = True
        return self

    async def __aenter__(self) -> DurableQueue:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def close(self, *, timeout: float = 10.0) -> list[str]:
        """Same as :meth:`stop`."""
        return await self.stop(timeout=timeout)

    async def stop(self, *, timeout: float = 10.0) -> list[str]:
        """Stop intake, let running tasks finish for up to ``timeout`` s, return the rest to the queue.

        Returns the ids of the tasks that were returned (empty: everything in hand finished).
        Queued tasks stay queued in PostgreSQL for any other (or the next) worker.
        """
        self._accepting = False
        if self._stopped:
            return []
        self._stopped = True
        returned: list[str] = []
        self._stopping.set()
        if self._consumer is not None:
            if self._manager is not None:
                self._manager.shutdown.set()
            done, _ = await asyncio.wait({self._consumer}, timeout=timeout)
            if not done:
                returned = sorted(self._held)
                jobs = set(self._jobs)
                for job in jobs:  # pgqueuer waits for its job tasks on exit: cancel them first
                    job.cancel()
                if jobs:
                    await asyncio.wait(jobs, timeout=2.0)
                self._consumer.cancel()
                await asyncio.wait({self._consumer}, timeout=2.0)
                await self._requeue(returned)
        await cancel_and_wait(self._janitor)
        if self._pool is not None:
            await self._pool.close()
        if returned:
            logger.info("durable queue stopped: %d unfinished tasks returned to the queue", len(returned))
        return returned

    async def _consume(self) -> None:
        """Run pgqueuer's consumer; after a failure (PostgreSQL restarted...) reconnect with backoff."""
        pause = 0.5
        batch = max(1, self.workers // 2)
        while not self._stopping.is_set():
            listener = None
            try:
                listener = await asyncpg.connect(self.database_url, server_settings=self._server_settings)
                self._manager = QueueManager(self._queries(listener), channel=self._pgqueuer.channel)
                self._manager.entrypoint(name="durable_task")(self._run_job)
                if self._stopping.is_set():
                    return
                await self._manager.run(dequeue_timeout=timedelta(seconds=min(self.lease / 4, 1.0)),
                                        batch_size=batch, max_concurrent_tasks=max(self.workers, 2 * batch),
                                        heartbeat_timeout=timedelta(seconds=self.lease))
                if self._stopping.is_set():
                    return
                pause = 0.5  # pgqueuer returned on its own (listener health check): start afresh
            except Exception as exc:  # noqa: BLE001 - a dead consumer strands work: log and restart it
                logger.warning("durable queue consumer failed (%s: %s); restarting in %.1fs",
                               type(exc).__name__, exc, pause)
            finally:
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await listener.close(timeout=2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
            pause = min(pause * 2, 5.0)

    def stop_intake(self) -> None:
        """Refuse new tasks from now on (:class:`QueueClosed`); workers keep running. For a drain period."""
        self._accepting = False

    async def _install(self) -> None:
        async with self._acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", self._lock)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')  # identifier validated
                await conn.execute(_DDL)
                queries = self._queries(conn)
                if not await queries.schema_is_installed():
                    await queries.install(create_schema=False)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", self._lock)

    def _queries(self, conn: asyncpg.Connection) -> Queries:
        return self._pgqueuer.on(conn)

    def _acquire(self) -> Any:
        if self._pool is None:
            raise QueueClosed("the durable queue is not started: call await queue.start() first")
        return self._pool.acquire()

    # intake --------------------------------------------------------------------------------
    async def submit(self, name: str, payload: bytes) -> str:
        """Write the task durably and return its id (committed when this returns).

        Raises :class:`QueueFull` (with ``retry_after``) when ``max_depth`` tasks are
        unfinished across all processes, :class:`QueueClosed` before start or while stopping,
        :class:`QueueUnavailable` when PostgreSQL cannot be reached. A connection that breaks
        mid-submit is settled once (:func:`perf.pool.outcome.run_write`): the task is accepted
        exactly once, or refused.
        """
        if not self._accepting:
            raise QueueClosed("the durable queue is not accepting tasks: call start() first, or it is stopping")
        if self.handlers and name not in self.handlers:
            raise ValueError(f"name={name!r} has no handler; known: {', '.join(sorted(self.handlers))}")
        try:
            return await self._submit(name, payload)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise QueueUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__}); the task was not accepted, "
                                   "retry shortly") from exc

    async def _submit(self, name: str, payload: bytes) -> str:
        async def enqueue(conn: asyncpg.Connection) -> str:
            task_id = new_task_id()
            if self.exact_depth:
                # One enqueue at a time per schema, lock held to the commit: the limit is exact across
                # processes, but commits (fsyncs) are serialised. Without it two submitters may both
                # take the last slot (overshoot <= concurrent submitters) and commits are grouped.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._lock)
            depth = await conn.fetchval("SELECT count(*) FROM durable_tasks WHERE state IN ('queued', 'running', "
                                        "'failed')")
            if depth >= self.max_depth:
                self.counts["rejected"] += 1
                raise QueueFull(self.max_depth,
                                max(1.0, round(depth / max(self.workers, 1) * _RETRY_SECONDS_PER_TASK)))
            job_ids = await self._queries(conn).enqueue("durable_task", task_id.encode())
            await conn.execute("INSERT INTO durable_tasks (id, name, payload, job_id) VALUES ($1, $2, $3, $4)",
                               task_id, name, payload, job_ids[0])
            return task_id

        # a connection broken mid-submit (a restart) is settled by asking whether the task committed:
        # a 202 for a task that was accepted, never a 503, and never a task accepted twice
        task_id = await run_write(self._acquire, enqueue)
        self.counts["submitted"] += 1
        return task_id

    async def _requeue(self, task_ids: list[str]) -> None:
        """Give unfinished tasks a new delivery (a duplicate one is harmless: handlers skip finished tasks)."""
        if not task_ids or self._pool is None:
            return
        async with self._acquire() as conn, conn.transaction():
            job_ids = await self._queries(conn).enqueue(["durable_task"] * len(task_ids),
                                                        [t.encode() for t in task_ids], [0] * len(task_ids))
            await conn.executemany(
                "UPDATE durable_tasks SET job_id = $2, state = CASE WHEN state = 'running' THEN 'queued' "
                "ELSE state END WHERE id = $1 AND state IN ('queued', 'running', 'failed')",
                list(zip(task_ids, job_ids, strict=True)))

    async def _redeliver_orphans(self) -> list[str]:
        """Re-enqueue unfinished tasks whose pgqueuer job is gone (pgqueuer drops a job whose handler
        raised anything but RetryRequested, e.g. a lost connection while recording the outcome)."""
        async with self._acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock + _SWEEP_LOCK_OFFSET):
                return []  # another process is sweeping
            orphans: list[str] = [row["id"] for row in await conn.fetch(
                f"SELECT t.id FROM durable_tasks t WHERE t.state IN ('queued', 'running', 'failed') "
                f"AND t.enqueued_at < clock_timestamp() - make_interval(secs => $1) "
                f"AND NOT EXISTS (SELECT 1 FROM {self._pgqueuer.queue_table} q WHERE q.id = t.job_id)",
                self.lease)]
        if orphans:
            logger.warning("durable queue: %d tasks had lost their delivery; enqueued again", len(orphans))
            await self._requeue(orphans)
        return orphans

    # status ---------------------------------------------------------------------------------
    async def status(self, task_id: str) -> dict[str, Any] | None:
        """The task's record as a JSON-ready dict, None if unknown; :class:`TaskExpired` if expired.

        :class:`QueueUnavailable` when PostgreSQL cannot be reached.
        """
        if task_id_time(task_id) is None:  # not an id this queue ever made: unknown, without a query
            return None
        try:
            async with self._acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT id, name, state, attempts, result, error, extract(epoch FROM enqueued_at) AS enqueued_at, "
                    "extract(epoch FROM started_at) AS started_at, extract(epoch FROM finished_at) AS finished_at, "
                    "finished_at < clock_timestamp() - make_interval(secs => $2) AS expired "
                    "FROM durable_tasks WHERE id = $1", task_id, self.retention)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            raise QueueUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__}); retry shortly") from exc
        if row is None or row["expired"]:
            created = task_id_time(task_id)
            if row is not None or (created is not None and created < time.time() - self.retention):
                raise TaskExpired(f"task {task_id} expired: it finished more than retention={self.retention:g}s ago "
                                  "and its result is no longer kept")
            return None
        record = {key: row[key] for key in ("id", "name", "state", "attempts", "error")}
        record["result"] = orjson.loads(row["result"]) if row["result"] is not None else None
        for key in ("enqueued_at", "started_at", "finished_at"):
            record[key] = float(row[key]) if row[key] is not None else None
        return record

    async def wait(self, task_id: str, *, timeout: float = 10.0, interval: float = 0.02) -> dict[str, Any]:
        """Poll until the task is ``done`` or ``dead`` and return its record (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            record = await self.status(task_id)
            if record is None:
                raise KeyError(f"task_id={task_id!r} is unknown to this queue")
            if record["state"] in ("done", "dead"):
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {record['state']} after {timeout}s")
            await asyncio.sleep(interval)

    async def stats(self) -> dict[str, Any]:
        """Tasks per state across all processes, plus this process' counters."""
        async with self._acquire() as conn:
            rows = await conn.fetch("SELECT state, count(*) AS n FROM durable_tasks GROUP BY state")
        states = {state: 0 for state in ("queued", "running", "done", "failed", "dead")}
        states.update({row["state"]: row["n"] for row in rows})
        return {"states": states, "depth": sum(states[s] for s in UNFINISHED), "max_depth": self.max_depth,
                "workers": self.workers, "running_here": len(self._running), "accepting": self._accepting,
                **self.counts}

    # workers ----------------------------------------------------------------------------------
    async def _run_job(self, job: Job) -> None:
        task_id = (job.payload or b"").decode()
        current = asyncio.current_task()
        self._held.add(task_id)
        if current is not None:
            self._jobs.add(current)
        try:
            async with self._slots:  # pgqueuer picks at least 2 jobs at once; run ``workers`` of them
                await self._attempt(task_id)
        finally:
            self._held.discard(task_id)
            self._jobs.discard(current)

    async def _attempt(self, task_id: str) -> None:
        async with self._acquire() as conn:
            row = await conn.fetchrow(
                "UPDATE durable_tasks SET state = 'running', attempts = attempts + 1, started_at = clock_timestamp() "
                "WHERE id = $1 AND state IN ('queued', 'running', 'failed') RETURNING name, attempts, payload", task_id)
        if row is None:  # finished already (a duplicate delivery) or purged: nothing to do
            self.counts["skipped"] += 1
            return
        attempts: int = row["attempts"]
        if attempts > self.max_attempts:  # every earlier attempt died with its worker
            await self._finish(task_id, "dead", error=f"gave up after {self.max_attempts} attempts: the worker "
                                                      "running it stopped each time")
            return
        handler = self.handlers.get(row["name"])
        self._running.add(task_id)
        try:
            if handler is None:
                raise LookupError(f"no handler for task name {row['name']!r} in this process")
            result = await asyncio.wait_for(handler(row["payload"]), self.timeout)
        except Exception as exc:  # noqa: BLE001 - a task's failure is data, not a worker crash
            error = f"timed out after {self.timeout:g}s" if isinstance(exc, TimeoutError) \
                else f"{type(exc).__name__}: {exc}"[:500]
            if attempts >= self.max_attempts:
                await self._finish(task_id, "dead", error=error)
                return
            async with self._acquire() as conn:
                await conn.execute("UPDATE durable_tasks SET state = 'failed', error = $2 WHERE id = $1 "
                                   "AND state = 'running'", task_id, error)
            self.counts["retried"] += 1
            raise RetryRequested(delay=timedelta(seconds=self.backoff * 2 ** (attempts - 1)), reason=error) from exc
        finally:
            self._running.discard(task_id)
        await self._finish(task_id, "done", result=result)

    async def _finish(self, task_id: str, state: str, *, result: Any = None, error: str | None = None) -> None:
        async with self._acquire() as conn:
            await conn.execute(
                "UPDATE durable_tasks SET state = $2, result = $3::jsonb, error = $4, payload = NULL, "
                "finished_at = clock_timestamp() WHERE id = $1 AND state NOT IN ('done', 'dead')",
                task_id, state, orjson.dumps(result).decode() if state == "done" else None, error)
        self.counts[state] += 1

    async def _janitor_loop(self) -> None:
        interval, last_purge = self.lease, 0.0
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):  # a missed sweep only delays it
                await self._redeliver_orphans()
                if time.monotonic() - last_purge > min(max(self.retention / 2, 1.0), 60.0):
                    last_purge = time.monotonic()
                    async with self._acquire() as conn:
                        await conn.execute("DELETE FROM durable_tasks WHERE finished_at < clock_timestamp() - "
                                           "make_interval(secs => $1)", self.retention)
