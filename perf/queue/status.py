"""One task's life (queued → running → done | failed) and the queues' errors and task ids."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

TaskState = Literal["queued", "running", "done", "failed"]


class QueueFull(Exception):
    """The queue holds ``max_size`` tasks already; retry after ``retry_after`` seconds.

    The API turns it into ``429 Too Many Requests`` with ``Retry-After``.
    """

    def __init__(self, max_size: int, retry_after: float) -> None:
        super().__init__(f"the task queue is full ({max_size} tasks waiting); retry after {retry_after:.0f}s "
                         "or raise max_size/workers")
        self.max_size = max_size
        self.retry_after = retry_after


class QueueClosed(Exception):
    """The queue is stopping or stopped and accepts no new task."""


class QueueUnavailable(Exception):
    """PostgreSQL cannot be reached; nothing was accepted. The API answers 503 with ``Retry-After``."""


class TaskExpired(LookupError):
    """The task finished longer ago than the queue's ``retention``; its record is gone."""


_HEX = frozenset("0123456789abcdef")


def new_task_id() -> str:
    """A 32-hex id whose first 12 digits are the creation time in ms (UUIDv7-like, sortable)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def task_id_time(task_id: str) -> float | None:
    """The creation time (epoch s) encoded in a :func:`new_task_id`, or None if it is not one."""
    # strict: int(x, 16) would also take "0x", "_" and spaces, and PostgreSQL refuses a NUL byte
    if len(task_id) != 32 or not all(c in _HEX for c in task_id):
        return None
    return int(task_id[:12], 16) / 1000


@dataclass
class TaskRecord:
    """What is known about one task. ``error`` is set when ``state == "failed"``."""

    id: str
    name: str
    state: TaskState = "queued"
    attempts: int = 0
    error: str | None = None
    result: Any = None
    enqueued_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the task is done or failed."""
        return self.state in ("done", "failed")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``result`` included only if it is a plain JSON value)."""
        result = self.result if isinstance(self.result, (str, int, float, bool, list, dict, type(None))) else None
        return {"id": self.id, "name": self.name, "state": self.state, "attempts": self.attempts,
                "error": self.error, "result": result, "enqueued_at": self.enqueued_at,
                "started_at": self.started_at, "finished_at": self.finished_at}
