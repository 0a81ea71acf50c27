"""THE THING NOT TO DO: the seed tutorial's connection pool, reproduced faithfully.

Kept only so the notebook can show its failure modes on purpose. Never use it.

* ``await self.pool.get_nowait()``: ``get_nowait`` returns a connection, not an
  awaitable, so every acquire that finds an idle connection raises ``TypeError``, and
  the connection it already took off the queue is lost (open, counted, unreachable).
  Once ``max_size`` connections are lost, the next acquire waits on an empty queue
  forever, *holding the lock*: every later caller hangs too.
* The lock is held across every await (connect, close, waiting for a free
  connection), so one slow caller delays all the others, and connects are serial.
* ``release`` returns a connection as it is: inside a transaction, or still busy
  cancelling the query of a borrower that was cancelled.
* No acquire timeout, no close(): on shutdown every connection leaks.

:class:`SeedPoolTypoFixed` fixes only the ``await get_nowait()`` line, to get past the
first crash and show the design flaws underneath. The ``created`` list and
:meth:`SeedPool.close_everything` are NOT in the seed: they let the notebook clean up.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import Lock, Queue
from collections.abc import Awaitable, Callable
from typing import Any


class SeedPool:
    """The seed's ``ConnectionPool``, line for line (plus cleanup bookkeeping). Do not use."""

    def __init__(self, create_connection: Callable[[], Awaitable[Any]], min_size: int = 5,
                 max_size: int = 20, max_idle: int = 300) -> None:
        self._create = create_connection
        self.min_size = min_size
        self.max_size = max_size
        self.max_idle = max_idle
        self.pool: Queue[Any] = Queue()
        self.size = 0
        self.lock = Lock()
        self.in_use: set[Any] = set()
        self.last_used: dict[int, float] = {}
        self.created: list[Any] = []  # not in the seed: lets the demo close what leaked

    async def create_connection(self) -> Any:
        """The seed's connection factory (recorded in ``created`` for cleanup)."""
        conn = await self._create()
        self.created.append(conn)
        return conn

    async def initialize(self) -> None:
        """Open ``min_size`` connections, one after another."""
        for _ in range(self.min_size):
            conn = await self.create_connection()
            await self.pool.put(conn)
            self.size += 1

    async def _take_idle(self) -> Any:
        return await self.pool.get_nowait()  # the seed's bug: awaits a connection

    async def acquire(self) -> Any:
        """The seed's acquire: holds ``self.lock`` across every await below."""
        async with self.lock:
            try:
                while True:
                    conn = await self._take_idle()
                    last_used = self.last_used.get(id(conn))
                    if last_used and time.time() - last_used > self.max_idle:
                        await self.close_connection(conn)
                        continue
                    self.in_use.add(conn)
                    return conn
            except asyncio.QueueEmpty:
                pass
            if self.size < self.max_size:
                conn = await self.create_connection()
                self.size += 1
                self.in_use.add(conn)
                return conn
            conn = await self.pool.get()
            self.in_use.add(conn)
            return conn

    async def release(self, conn: Any) -> None:
        """The seed's release: puts the connection back as it is."""
        self.in_use.remove(conn)
        self.last_used[id(conn)] = time.time()
        await self.pool.put(conn)

    async def close_connection(self, conn: Any) -> None:
        """The seed's close: ``size`` is decremented only if ``close()`` is not interrupted."""
        await conn.close()
        self.size -= 1
        if id(conn) in self.last_used:
            del self.last_used[id(conn)]

    async def close_everything(self) -> None:
        """NOT in the seed: terminate every connection it ever opened (demo cleanup)."""
        for conn in self.created:
            if not conn.is_closed():
                conn.terminate()
        self.created.clear()


class SeedPoolTypoFixed(SeedPool):
    """The seed pool with only ``await get_nowait()`` corrected; every design flaw kept."""

    async def _take_idle(self) -> Any:
        return self.pool.get_nowait()
