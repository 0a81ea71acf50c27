"""TaskQueue: a bounded asyncio queue worked by N tasks, with timeouts, retries and a clean stop.

Why bounded: an unbounded queue turns overload into unbounded memory and latency; a
full bounded queue says no at once (:class:`~perf.queue.status.QueueFull`, which the API
answers with 429 and ``Retry-After``) and the request handler never waits.

:meth:`TaskQueue.stop` stops intake first, then waits for every accepted task to finish
(queued ones included) up to a timeout; whatever is left is cancelled, marked failed and
listed in the :class:`StopReport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from perf.measure.latency import LatencyHistogram
from perf.queue.status import QueueClosed, QueueFull, TaskRecord

logger = logging.getLogger(__name__)

TaskFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class StopReport:
    """What :meth:`TaskQueue.stop` achieved: ``unfinished`` lists ids it had to cancel."""

    finished: int
    unfinished: list[str]
    seconds: float

    @property
    def clean(self) -> bool:
        """True when every accepted task finished."""
        return not self.unfinished


class TaskQueue:
    """Bounded queue + ``workers`` worker tasks. Use ``async with TaskQueue(...)`` or ``await start()``/``stop()``.

    ``max_size``: tasks waiting at most (``submit`` raises QueueFull beyond it).
    ``timeout``: seconds one attempt may run before it is cancelled and counts as failed.
    ``retries``: extra attempts after a failure, waiting ``backoff * 2**n`` seconds between them.
    ``keep_finished``: finished records remembered for ``status()`` (oldest forgotten first).
    """

    def __init__(self, *, workers: int = 4, max_size: int = 1000, timeout: float = 30.0, retries: int = 0,
                 backoff: float = 0.1, keep_finished: int = 10_000) -> None:
        for name, value, low in (("workers", workers, 1), ("max_size", max_size, 1), ("retries", retries, 0),
                                 ("keep_finished", keep_finished, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r} must be an integer >= {low}")
        if not timeout > 0:
            raise ValueError(f"timeout={timeout!r} must be > 0 seconds (a hung task would block a worker forever)")
        if backoff < 0:
            raise ValueError(f"backoff={backoff!r} must be >= 0 seconds")
        self.workers, self.max_size, self.timeout = workers, max_size, float(timeout)
        self.retries, self.backoff, self.keep_finished = retries, float(backoff), keep_finished
        self._queue: asyncio.Queue[tuple[TaskRecord, TaskFn, tuple[Any, ...], dict[str, Any]]] = asyncio.Queue(max_size)
        self._records: OrderedDict[str, TaskRecord] = OrderedDict()
        self._workers: list[asyncio.Task[None]] = []
        self._running = 0
        self._counts = {"submitted": 0, "done": 0, "failed": 0, "retried": 0, "rejected": 0}
        self._wait = LatencyHistogram()
        self._run = LatencyHistogram()
        self._accepting = False
        self._stopped = False

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> TaskQueue:
        """Start the workers (idempotent)."""
        if self._stopped:
            raise QueueClosed("this TaskQueue was stopped; create a new one")
        if not self._workers:
            self._workers = [asyncio.create_task(self._work(), name=f"task-worker-{i}") for i in range(self.workers)]
            self._accepting = True
        return self

    async def __aenter__(self) -> TaskQueue:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def close(self, *, timeout: float = 10.0) -> StopReport:
        """Same as :meth:`stop` (the workbook's usual name for "release everything")."""
        return await self.stop(timeout=timeout)

    async def stop(self, *, timeout: float = 10.0) -> StopReport:
        """Stop intake, wait up to ``timeout`` s for every accepted task, cancel the rest (idempotent)."""
        started = time.perf_counter()
        self._accepting = False
        if self._stopped:
            return StopReport(self._counts["done"] + self._counts["failed"], [], 0.0)
        self._stopped = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        unfinished = [r.id for r in self._records.values() if not r.finished]
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for task_id in unfinished:
            record = self._records[task_id]
            if record.state != "failed":  # queued ones were never picked up
                self._counts["failed"] += 1
            record.state, record.error = "failed", f"not finished within stop(timeout={timeout})"
            record.finished_at = time.time()
        if unfinished:
            logger.warning("task queue stopped with %d unfinished tasks: %s", len(unfinished), unfinished[:10])
        return StopReport(self._counts["done"] + self._counts["failed"] - len(unfinished), unfinished,
                          time.perf_counter() - started)

    # intake --------------------------------------------------------------------------------
    def submit(self, fn: TaskFn, *args: Any, name: str | None = None, **kwargs: Any) -> str:
        """Queue ``await fn(*args, **kwargs)``; return its task id. Never waits.

        Raises :class:`QueueFull` (with ``retry_after``) when ``max_size`` tasks are waiting
        and :class:`QueueClosed` before ``start()`` or after ``stop()``.
        """
        if not self._accepting:
            raise QueueClosed("the task queue is not accepting tasks: call start() first, or it is stopping")
        record = TaskRecord(id=uuid.uuid4().hex, name=name or str(getattr(fn, "__name__", "task")))
        try:
            self._queue.put_nowait((record, fn, args, kwargs))
        except asyncio.QueueFull:
            self._counts["rejected"] += 1
            raise QueueFull(self.max_size, self._retry_after()) from None
        self._counts["submitted"] += 1
        self._records[record.id] = record
        self._forget_old()
        return record.id

    def _retry_after(self) -> float:
        run = self._run.percentile(50) if self._run.count else 1.0
        return max(1.0, round(self._queue.qsize() * run / self.workers))

    def _forget_old(self) -> None:
        excess = len(self._records) - self.keep_finished - self.max_size - self.workers
        for task_id in list(self._records)[: max(excess, 0)]:
            if self._records[task_id].finished:
                del self._records[task_id]

    # status ---------------------------------------------------------------------------------
    def status(self, task_id: str) -> TaskRecord | None:
        """The task's record, or None for an unknown (or long forgotten) id."""
        return self._records.get(task_id)

    async def wait(self, task_id: str, *, timeout: float = 10.0, interval: float = 0.01) -> TaskRecord:
        """Wait until the task is finished and return its record (TimeoutError after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self._records.get(task_id)
            if record is None:
                raise KeyError(f"task_id={task_id!r} is unknown to this queue")
            if record.finished:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} still {record.state} after {timeout}s")
            await asyncio.sleep(interval)

    def stats(self) -> dict[str, Any]:
        """Depth, running, counters and wait/run latency percentiles (ms) as a JSON-ready dict."""
        def pct(hist: LatencyHistogram) -> dict[str, float | None]:
            return {f"p{p}": (round(hist.percentile(p) * 1e3, 3) if hist.count else None) for p in (50, 90, 99)}

        return {"depth": self._queue.qsize(), "max_size": self.max_size, "workers": self.workers,
                "running": self._running, "accepting": self._accepting, **self._counts,
                "wait_ms": pct(self._wait), "run_ms": pct(self._run)}

    # workers ----------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            record, fn, args, kwargs = await self._queue.get()
            try:
                self._running += 1
                record.state, record.started_at = "running", time.time()
                self._wait.record(record.started_at - record.enqueued_at)
                await self._attempts(record, fn, args, kwargs)
            finally:
                self._running -= 1
                self._queue.task_done()

    async def _attempts(self, record: TaskRecord, fn: TaskFn, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        began = time.perf_counter()
        for attempt in range(self.retries + 1):
            record.attempts = attempt + 1
            try:
                record.result = await asyncio.wait_for(fn(*args, **kwargs), self.timeout)
            except asyncio.CancelledError:
                record.state, record.error = "failed", "cancelled"
                record.finished_at = time.time()
                self._counts["failed"] += 1
                raise
            except Exception as exc:  # noqa: BLE001 - a task's failure is data, not a worker crash
                if isinstance(exc, TimeoutError):
                    record.error = f"timed out after {self.timeout}s"
                else:
                    record.error = f"{type(exc).__name__}: {exc}"
                if attempt < self.retries:
                    self._counts["retried"] += 1
                    await asyncio.sleep(self.backoff * 2**attempt)
                    continue
                record.state = "failed"
                self._counts["failed"] += 1
            else:
                record.state, record.error = "done", None
                self._counts["done"] += 1
            break
        record.finished_at = time.time()
        self._run.record(time.perf_counter() - began)
