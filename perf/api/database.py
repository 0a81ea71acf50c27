"""The API's PostgreSQL seam: a perf.pool pool, or a new connection per request (the baseline).

``async with db.connection() as conn`` works the same in both modes, counts the time
spent as the request's ``db`` time, sets ``search_path`` to the API's schema, and turns
"PostgreSQL is unreachable" into :class:`~perf.api.errors.ServiceUnavailable` (503 with
``Retry-After``) instead of a 500. A connection broken by a server restart is dropped
by the pool on release, so the API recovers by itself when PostgreSQL returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from perf.api.errors import ApiError, ServiceUnavailable
from perf.api.timing import timed
from perf.pool import Pool, PoolError, create_pool

#: Errors that mean "the database is not there right now" (→ 503), not "your query is wrong".
UNAVAILABLE = (OSError, asyncio.TimeoutError, PoolError, asyncpg.PostgresConnectionError,
               asyncpg.InterfaceError, asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError,
               asyncpg.ConnectionDoesNotExistError)


class Database:
    """Connections to ``database_url`` with ``search_path`` = ``schema``; ``pooled`` picks the mode."""

    def __init__(self, database_url: str, *, schema: str, pooled: bool = True, min_size: int = 2,
                 max_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.database_url = database_url
        self.schema = schema
        self.pooled = pooled
        self._connect_kwargs: dict[str, Any] = {"server_settings": {"search_path": schema,
                                                                     "application_name": "perf-api"},
                                                "timeout": connect_timeout}
        self._pool: Pool[Any] | None = None
        if pooled:
            # the pool's ``timeout`` bounds acquire, connecting included
            self._pool = create_pool(database_url, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                                     server_settings=self._connect_kwargs["server_settings"])
        self.connects = 0
        self.errors = 0

    async def open(self) -> Database:
        """Open the pool (pooled mode; fails if PostgreSQL is unreachable at startup)."""
        if self._pool is not None:
            await self._pool.open()
        return self

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._pool is not None and not self._pool.closed:
            await self._pool.close()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for this block; 503 (ServiceUnavailable) when PostgreSQL is unreachable."""
        with timed("db"):
            try:
                if self._pool is not None:
                    async with self._pool.acquire() as conn:
                        yield conn
                else:
                    self.connects += 1
                    conn = await asyncpg.connect(self.database_url, **self._connect_kwargs)
                    try:
                        yield conn
                    finally:
                        await conn.close(timeout=5)
            except UNAVAILABLE as exc:
                self.errors += 1
                raise ServiceUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__}); retry shortly") from exc
            except asyncpg.IntegrityConstraintViolationError as exc:  # e.g. a category deleted meanwhile
                what = exc.constraint_name or type(exc).__name__
                raise ApiError(409, f"the change conflicts with the data ({what}); reload and retry") from exc

    async def ping(self) -> float:
        """Round-trip ``SELECT 1`` and return its seconds (raises ServiceUnavailable)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")
        return loop.time() - started

    def stats(self) -> dict[str, Any]:
        """Pool statistics (pooled) or connection counts (per request), JSON-ready."""
        data: dict[str, Any] = {"mode": "pool" if self.pooled else "connect-per-request", "errors": self.errors}
        if self._pool is not None:
            data.update(self._pool.stats().as_dict())
        else:
            data["connects"] = self.connects
        return data
