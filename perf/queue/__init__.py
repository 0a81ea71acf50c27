"""A bounded in-process background task queue with status tracking.

>>> async with TaskQueue(workers=4, max_size=1000, timeout=30.0, retries=2) as queue:
...     task_id = queue.submit(process_upload, payload)   # raises QueueFull, never blocks
...     queue.status(task_id).state                        # queued | running | done | failed
...     queue.stats()                                      # depth, running, done, failed, latency
... # leaving the block stops intake and drains every accepted task (StopReport lists leftovers)

* :mod:`perf.queue.status`: :class:`TaskRecord` (one task's state) and the errors.
* :mod:`perf.queue.queue`: :class:`TaskQueue` (workers, timeouts, retries with backoff, stop).
* :mod:`perf.queue.durable`: :class:`~perf.queue.durable.DurableQueue`, the next step: tasks
  committed to PostgreSQL before they are acknowledged (pgqueuer), so a crash loses nothing.
  Import it from there (``from perf.queue.durable import DurableQueue``): pgqueuer takes
  ~0.5 s to import, which users of the in-process queue should not pay.
* :mod:`perf.queue.demo_crash`: the crash experiment (SIGKILL a worker, count what survives).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports
from perf.queue.queue import StopReport, TaskQueue
from perf.queue.status import QueueClosed, QueueFull, QueueUnavailable, TaskExpired, TaskRecord, TaskState

if TYPE_CHECKING:
    from perf.queue.demo_backpressure import full_queue_requests, shutdown_drain
    from perf.queue.demo_compare import compare_queues
    from perf.queue.demo_crash import crash_experiment

# The other names a notebook uses (apparatus included), imported on first use: a process that
# imports one module of this package (the API server, a worker) pays for none of them.
_LAZY = {
    "full_queue_requests": "perf.queue.demo_backpressure",
    "shutdown_drain": "perf.queue.demo_backpressure",
    "compare_queues": "perf.queue.demo_compare",
    "crash_experiment": "perf.queue.demo_crash",
}
__all__ = [
    "QueueClosed", "QueueFull", "QueueUnavailable", "StopReport", "TaskExpired", "TaskQueue", "TaskRecord",
    "TaskState", "compare_queues", "crash_experiment", "full_queue_requests", "shutdown_drain",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
