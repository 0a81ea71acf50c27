"""The syllabus' ``TaskQueue``, reproduced as written (with its bugs), for notebook 06 to measure.

What the seed gets wrong, each shown failing by :mod:`perf.queue.demo_backpressure`:

* ``add_task`` awaits ``queue.put``: when the queue is full the **request handler waits**
  for a free slot instead of answering (the client sees seconds of latency, not a 429);
* ``stop`` sets ``running = False`` and then awaits ``queue.join()``: each worker leaves its
  loop after its current task, so tasks still queued are never taken and ``stop`` **never
  returns** (no timeout either);
* everything lives in the process's memory: a crash loses every accepted task
  (:mod:`perf.queue.demo_crash`, kind ``"naive"``).

The corrected queue is :class:`perf.queue.TaskQueue`; the durable one
:class:`perf.queue.durable.DurableQueue`. Only the type hints and this docstring are added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any


class TaskQueue:
    """The seed's queue: ``max_workers`` tasks draining an ``asyncio.Queue(max_queue_size)``."""

    def __init__(self, max_workers: int = 10, max_queue_size: int = 1000) -> None:
        self.queue: asyncio.Queue[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], dict[str, Any]]] = (
            asyncio.Queue(max_queue_size))
        self.max_workers = max_workers
        self.workers: list[asyncio.Task[None]] = []
        self.running = False
        self.logger = logging.getLogger(__name__)

    async def start(self) -> None:
        """Start task processors"""
        self.running = True
        for _ in range(self.max_workers):
            worker = asyncio.create_task(self._process_tasks())
            self.workers.append(worker)

    async def stop(self) -> None:
        """Stop task processors"""
        self.running = False
        await self.queue.join()
        for worker in self.workers:
            worker.cancel()
        self.workers.clear()

    async def add_task(self, func: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        """Add task to queue"""
        await self.queue.put((func, args, kwargs))

    async def _process_tasks(self) -> None:
        """Process tasks from queue"""
        while self.running:
            try:
                func, args, kwargs = await self.queue.get()

                start_time = time.time()
                try:
                    await func(*args, **kwargs)
                except Exception as e:
                    self.logger.error(f"Task error: {e!s}", exc_info=True)
                finally:
                    duration = time.time() - start_time
                    self.logger.info(f"Task completed in {duration:.2f}s")
                    self.queue.task_done()

            except asyncio.CancelledError:
                break
            except Exception as e:
                self.logger.error(f"Worker error: {e!s}", exc_info=True)


async def process_image(image_data: bytes, *, seconds: float = 1.0) -> str:
    """The seed's task: "simulate image processing" by sleeping ``seconds`` (1 s in the seed)."""
    await asyncio.sleep(seconds)
    return "processed"
