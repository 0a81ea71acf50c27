"""Single-flight: concurrent misses for one key run the loader once.

* :class:`SingleFlight` coalesces callers inside one process: the first caller (the
  leader) runs the loader, the others await its result.
* Across processes the leader holds a Redis lease (:mod:`perf.cache.lease`); others poll
  L2 for the value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    """In-process call coalescing by key."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Run ``fn()`` unless a call for ``key`` is already in flight, then share its result.

        Returns ``(value, shared)``; ``shared`` is True for callers that waited on another's
        call. If the leader is cancelled, a waiter becomes the new leader instead of
        inheriting a cancellation that was not meant for it.
        """
        while True:
            future = self._calls.get(key)
            if future is None:
                break
            try:
                return await asyncio.shield(future), True
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and task is not None and not task.cancelling():
                    continue
                raise
        future = asyncio.get_running_loop().create_future()
        self._calls[key] = future
        try:
            value = await fn()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        else:
            future.set_result(value)
            return value, False
        finally:
            if self._calls.get(key) is future:
                del self._calls[key]
