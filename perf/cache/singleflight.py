"""Single-flight: concurrent misses for one key run the loader once.

* :class:`SingleFlight` coalesces callers inside one process: the first caller (the
  leader) runs the loader, the others await its result.
* :class:`RedisLease` coalesces across processes: the leader holds ``SET key token NX PX
  lease``; others poll L2 for the value. The lease expires on its own if the leader dies,
  so a crashed worker never blocks a key for longer than ``lease`` seconds; it is
  released with a compare-and-delete script so a slow leader never deletes a lease that
  has already passed to someone else.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as redis

T = TypeVar("T")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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


class RedisLease:
    """A lease-based lock in Redis (one key, one random token, an expiry)."""

    def __init__(self, client: redis.Redis, *, lease: float = 5.0) -> None:
        if lease <= 0:
            raise ValueError(f"lease={lease!r} must be > 0 seconds: longer than your slowest loader (e.g. 10)")
        self.client = client
        self.lease = lease
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def new_token() -> str:
        """A random token naming one holder of a lease."""
        return secrets.token_hex(8)

    async def acquire(self, key: str, token: str) -> bool:
        """Try once to take the lease on ``key`` for ``token``; False if someone else holds it.

        If this call fails (a timeout), Redis may still run the ``SET`` later: the caller
        should then release ``token`` once Redis answers, or it holds a lease nobody uses.
        """
        return bool(await self.client.set(key, token, nx=True, px=max(int(self.lease * 1000), 1)))

    async def release(self, key: str, token: str) -> bool:
        """Release the lease if ``token`` still holds it; True if released."""
        return bool(await self._release(keys=[key], args=[token]))
