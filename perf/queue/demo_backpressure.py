"""Notebook 06's apparatus for the syllabus' queue: a full queue, and a shutdown with work queued.

:func:`full_queue_requests` serves ``POST /upload`` (uvicorn, in this event loop, on a
loopback port) in front of a queue that is already full, sends ``requests`` concurrent
uploads and times each answer:

* ``"naive"``: the seed's handler, ``await task_queue.add_task(...)``
  (:class:`perf.queue.naive.TaskQueue`): each request waits until a worker frees a slot;
* ``"corrected"``: :meth:`perf.queue.TaskQueue.submit`, which raises ``QueueFull`` at once,
  answered ``429`` with ``Retry-After``.

:func:`shutdown_drain` accepts tasks and then stops the queue: the seed's ``stop`` never
returns while tasks are queued (its workers leave their loop when ``running`` turns False,
so ``queue.join()`` waits forever), the corrected one drains them.

>>> await full_queue_requests("naive", requests=4)      # one row per request: status, seconds
>>> await shutdown_drain("naive", tasks=8)              # ShutdownResult(returned=False, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import httpx
import pandas as pd
import uvicorn

from perf.asgi import Receive, Scope, Send
from perf.queue import naive
from perf.queue.queue import TaskQueue
from perf.queue.status import QueueFull

QueueKind = Literal["naive", "corrected"]
KINDS: tuple[QueueKind, ...] = ("naive", "corrected")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} must be one of {KINDS}")


class UploadApp:
    """``POST /upload`` in front of ``queue`` the seed's way (naive) or the corrected way (429)."""

    def __init__(self, queue: naive.TaskQueue | TaskQueue, *, task_seconds: float) -> None:
        self.queue, self.task_seconds = queue, task_seconds

    async def _process(self, data: bytes) -> str:
        return await naive.process_image(data, seconds=self.task_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, headers, answer = 200, [(b"content-type", b"application/json")], b'{"message":"Processing started"}'
        if isinstance(self.queue, naive.TaskQueue):
            await self.queue.add_task(self._process, body)  # the seed's line: waits while the queue is full
        else:
            status = 202
            try:
                self.queue.submit(self._process, body)
            except QueueFull as exc:
                status, answer = 429, b'{"detail":"the task queue is full"}'
                headers.append((b"retry-after", f"{exc.retry_after:.0f}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@contextlib.asynccontextmanager
async def serve(app: UploadApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _fill(queue: naive.TaskQueue | TaskQueue, app: UploadApp, workers: int) -> int:
    added = 0
    while True:
        if isinstance(queue, naive.TaskQueue):
            if queue.queue.full():
                return added
            await queue.add_task(app._process, b"filler")
        else:
            try:
                queue.submit(app._process, b"filler")
            except QueueFull:
                return added
        added += 1
        if added == workers:
            await asyncio.sleep(0)  # let the workers take the first tasks, so the queue itself fills


async def full_queue_requests(kind: QueueKind, *, requests: int = 6, workers: int = 1, max_size: int = 4,
                              task_seconds: float = 0.2, timeout: float = 30.0) -> pd.DataFrame:
    """Fill a queue of ``max_size`` (``workers`` busy on ``task_seconds`` tasks), then send ``requests``
    concurrent uploads; one row per request: ``queue``, ``request``, ``status``, ``seconds``, ``retry_after``.
    """
    _check_kind(kind)
    if requests < 1 or workers < 1 or max_size < 1:
        raise ValueError(f"requests={requests}, workers={workers}, max_size={max_size}: each must be >= 1")
    queue: naive.TaskQueue | TaskQueue
    if kind == "naive":
        queue = naive.TaskQueue(max_workers=workers, max_queue_size=max_size)
        await queue.start()
    else:
        queue = await TaskQueue(workers=workers, max_size=max_size, timeout=max(task_seconds * 10, 1.0)).start()
    app = UploadApp(queue, task_seconds=task_seconds)
    try:
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=timeout) as client:
            # Fill only once the server is up: starting it can outlast a filler task on a busy machine,
            # and a worker taking the next filler meanwhile would leave a free slot to the first request.
            await _fill(queue, app, workers)
            async def one(i: int) -> dict[str, object]:
                started = time.perf_counter()
                response = await client.post("/upload", content=b"image-%d" % i)
                return {"queue": kind, "request": i, "status": response.status_code,
                        "seconds": time.perf_counter() - started,
                        "retry_after": response.headers.get("retry-after")}

            rows = await asyncio.gather(*(one(i) for i in range(requests)))
    finally:
        await _discard(queue)
    return pd.DataFrame(rows)


async def _discard(queue: naive.TaskQueue | TaskQueue) -> None:
    if isinstance(queue, TaskQueue):
        await queue.stop(timeout=60.0)  # drains what was accepted (a few short tasks)
        return
    for worker in queue.workers:  # the seed's stop() would wait forever for the queued tasks
        worker.cancel()
    await asyncio.gather(*queue.workers, return_exceptions=True)
    queue.workers.clear()


@dataclass(frozen=True)
class ShutdownResult:
    """Tasks accepted before ``stop()``, tasks that ran to the end, and whether ``stop()`` returned."""

    queue: str
    accepted: int
    completed: int
    returned: bool
    seconds: float

    @property
    def lost(self) -> int:
        """Accepted tasks that never ran to the end."""
        return self.accepted - self.completed


async def shutdown_drain(kind: QueueKind, *, tasks: int = 8, workers: int = 2, task_seconds: float = 0.05,
                         timeout: float = 2.0) -> ShutdownResult:
    """Accept ``tasks`` tasks, call ``stop()`` at once and wait for it at most ``timeout`` s.

    ``returned`` is False when ``stop()`` was still waiting after ``timeout`` (the seed's
    queue: its workers have quit, so ``queue.join()`` never completes); the workers are
    then cancelled so nothing is left running.
    """
    _check_kind(kind)
    if tasks < 1 or workers < 1:
        raise ValueError(f"tasks={tasks}, workers={workers}: each must be >= 1")
    completed = 0

    async def work() -> None:
        nonlocal completed
        await asyncio.sleep(task_seconds)
        completed += 1

    started = time.perf_counter()
    if kind == "naive":
        seed = naive.TaskQueue(max_workers=workers, max_queue_size=tasks)
        await seed.start()
        for _ in range(tasks):
            await seed.add_task(work)
        await asyncio.sleep(0)  # the workers take their first tasks, as they would in a running server
        started = time.perf_counter()
        try:
            await asyncio.wait_for(seed.stop(), timeout)
            returned = True
        except TimeoutError:
            returned = False
            await _discard(seed)
    else:
        async with TaskQueue(workers=workers, max_size=tasks, timeout=max(task_seconds * 10, 1.0)) as queue:
            for _ in range(tasks):
                queue.submit(work)
            await asyncio.sleep(0)
            started = time.perf_counter()
            report = await queue.stop(timeout=timeout)
            returned = report.clean
    return ShutdownResult(kind, tasks, completed, returned, time.perf_counter() - started)
