"""L1 invalidation across processes through Redis pub/sub.

Every :class:`~perf.cache.multilevel.MultiLevelCache` with the same namespace subscribes
to one channel. A process that deletes keys or invalidates tags publishes them (the
message is built by :meth:`InvalidationBus.encode` and sent by
:meth:`~perf.cache.redis_cache.RedisCache.publish`, through the cache's guard); every
other process drops those keys, or the L1 entries carrying those tags. Pub/sub is
at-most-once: while a subscriber is disconnected the cache counts it as deaf (no L1
served or filled, :mod:`perf.cache.coherence`), and on every reconnect it is told
(``on_connect`` with ``reconnected=True``) and clears its whole L1. A writer that cannot
reach Redis cannot publish either: :mod:`perf.cache.pg_invalidation` carries its
invalidation through PostgreSQL instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

from perf.aio import cancel_and_wait

logger = logging.getLogger(__name__)


class InvalidationBus:
    """Publishes invalidations and runs a background subscriber that applies others'."""

    def __init__(self, client: redis.Redis, channel: str, *,
                 on_message: Callable[[dict[str, Any]], None],
                 on_connect: Callable[[bool], Awaitable[None]],
                 on_error: Callable[[BaseException], None] = lambda exc: None,
                 reconnect_delay: float = 0.2) -> None:
        self.client = client
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self.connected = asyncio.Event()
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_error = on_error
        self._reconnect_delay = reconnect_delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the subscriber task (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"invalidation:{self.channel}")

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the subscription; True if subscribed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)
        return self.connected.is_set()

    def encode(self, message: dict[str, Any]) -> bytes:
        """``message`` plus this bus's origin (so the subscriber skips its own messages), as bytes to publish."""
        return orjson.dumps({**message, "origin": self.origin})

    async def _run(self) -> None:
        first = True
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._on_connect(not first)
                first = False
                self.connected.set()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        data = orjson.loads(message["data"])
                    except orjson.JSONDecodeError:
                        logger.warning("ignoring a malformed invalidation on %s", self.channel)
                        continue
                    if data.get("origin") != self.origin:
                        self._on_message(data)
            except Exception as exc:  # any failure (even a bad message or callback) resubscribes
                if not isinstance(exc, (RedisError, OSError)):
                    logger.exception("invalidation subscriber on %s failed; resubscribing", self.channel)
                self.connected.clear()
                self._on_error(exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self._reconnect_delay)

    async def close(self) -> None:
        """Stop the subscriber and wait for it to finish."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.connected.clear()
