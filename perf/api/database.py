"""The API's PostgreSQL seam: a perf.pool pool, asyncpg's pool (the syllabus') or a connection per request.

``async with db.connection() as conn`` works the same in both modes, counts the time
spent as the request's ``db`` time, sets ``search_path`` to the API's schema, and turns
"PostgreSQL is unreachable" (:func:`perf.pool.unavailable.is_unavailable`, the one
classification the pool and the durable queue use too) into
:class:`~perf.api.errors.ServiceUnavailable` (503 with ``Retry-After``) instead of a 500.
A connection broken by a server restart, or told by a shutting-down server that it is
about to be closed, is dropped by the pool and never lent out, and an acquire waits out
a restart shorter than ``connect_timeout``. A read whose connection the server closed while
the read ran (:meth:`Database.read`) runs again once on a fresh connection: a read is safe
to repeat, so a GET rides a fast restart without errors. A write (:meth:`Database.write`)
learns its transaction id before ``COMMIT``; when its connection breaks, a fresh one asks
PostgreSQL whether it committed (:mod:`perf.pool.outcome`): if so it is answered as done, if
not it runs again once. So a write cut off once is never reported as failed when it committed,
nor applied twice; cut off a second time it is a 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import asyncpg

from perf.api.errors import ApiError, ServiceUnavailable
from perf.api.timing import timed
from perf.pool import Pool, create_pool
from perf.pool.outcome import on_live_connection, run_write, waited_out
from perf.pool.unavailable import is_unavailable

T = TypeVar("T")

#: ``perf``: :mod:`perf.pool`; ``asyncpg``: ``asyncpg.create_pool`` (the syllabus'); ``none``: connect per request.
PoolKind = Literal["perf", "asyncpg", "none"]


class Database:
    """Connections to ``database_url`` with ``search_path`` = ``schema``; ``pool`` picks how (:data:`PoolKind`)."""

    def __init__(self, database_url: str, *, schema: str, pool: PoolKind = "perf", min_size: int = 2,
                 max_size: int = 10, connect_timeout: float = 5.0) -> None:
        if pool not in ("perf", "asyncpg", "none"):
            raise ValueError(f"pool={pool!r} must be 'perf', 'asyncpg' or 'none'")
        self.database_url = database_url
        self.schema = schema
        self.kind: PoolKind = pool
        self.pooled = pool != "none"
        self._connect_kwargs: dict[str, Any] = {"server_settings": {"search_path": schema,
                                                                     "application_name": "perf-api"},
                                                "timeout": connect_timeout}
        self._pool: Pool[Any] | None = None
        self._asyncpg_pool: asyncpg.Pool | None = None
        self._sizes = (min_size, max_size)
        if pool == "perf":
            # the pool's ``timeout`` bounds acquire, connecting included
            # reset="session": the API's SQL is its own and changes no session state, inside functions
            # or out, so it skips the default's reset round trip per request (perf.pool.Pool lists the gap).
            self._pool = create_pool(database_url, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                                     reset="session", server_settings=self._connect_kwargs["server_settings"])
        self.connects = 0
        self.errors = 0

    async def open(self) -> Database:
        """Open the pool (pooled mode; fails if PostgreSQL is unreachable at startup)."""
        if self._pool is not None:
            await self._pool.open()
        if self.kind == "asyncpg" and self._asyncpg_pool is None:
            self._asyncpg_pool = await asyncpg.create_pool(self.database_url, min_size=self._sizes[0],
                                                           max_size=self._sizes[1], **self._connect_kwargs)
        return self

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._pool is not None and not self._pool.closed:
            await self._pool.close()
        if self._asyncpg_pool is not None:
            pool, self._asyncpg_pool = self._asyncpg_pool, None
            await asyncio.wait_for(pool.close(), timeout=10)

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
                elif self._asyncpg_pool is not None:
                    async with self._asyncpg_pool.acquire(timeout=self._connect_kwargs["timeout"]) as conn:
                        yield conn
                else:
                    self.connects += 1
                    conn = await asyncpg.connect(self.database_url, **self._connect_kwargs)
                    try:
                        yield conn
                    finally:
                        await conn.close(timeout=5)
            except asyncpg.IntegrityConstraintViolationError as exc:  # e.g. a category deleted meanwhile
                what = exc.constraint_name or type(exc).__name__
                raise ApiError(409, f"the change conflicts with the data ({what}); reload and retry") from exc
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                self.errors += 1
                raise ServiceUnavailable(f"PostgreSQL is unavailable ({type(exc).__name__}); retry shortly") from exc

    async def read(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``await query(conn)`` on a connection, for a query that only reads: when the server closes the
        connection while it runs (a restart), it runs once more on a fresh one that answers
        (:func:`~perf.pool.outcome.on_live_connection`; waiting out the restart, up to ``connect_timeout``);
        503 if that fails too, or if no connection came at all."""
        try:
            async with self.connection() as conn:
                return await query(conn)
        except ServiceUnavailable as exc:
            if waited_out(exc):
                raise  # no connection within connect_timeout: waiting again would double the wait
        # a moment later, on a connection that answers: not one the restart is dropping too
        return await on_live_connection(self.connection, query, broken=self._broken,
                                        wait=self._connect_kwargs["timeout"])

    async def write(self, work: Callable[[asyncpg.Connection], Awaitable[T]], *,
                    xid_of: Callable[[T], int | None] | None = None) -> T:
        """``await work(conn)`` in one transaction and return its result; for every write.

        The transaction's id is learned before ``COMMIT``: ``xid_of(result)`` when ``work``
        selected ``pg_current_xact_id()`` in a statement of its own, else one more statement.

        When the connection breaks (a restart), a fresh one (the acquire waits out the restart, up
        to ``connect_timeout``) asks PostgreSQL whether the transaction committed: if it did, what
        ``work`` returned inside it is returned (the caller then runs its after-commit steps as
        usual); if not, ``work`` runs once more. 503 if that fails too, or if no connection came at
        all. ``work`` must not commit itself, and its result must hold all the caller needs after
        the commit. See :func:`perf.pool.outcome.run_write`.

        >>> await db.write(lambda conn: conn.fetchval("DELETE FROM products WHERE id = $1 RETURNING id", 7))
        7
        """
        return await run_write(self.connection, work, xid_of=xid_of, broken=self._broken,
                               wait=self._connect_kwargs["timeout"])

    @staticmethod
    def _broken(exc: BaseException) -> bool:
        """What :meth:`connection` raises when the connection broke or none came (its cause says which)."""
        return isinstance(exc, ServiceUnavailable)

    async def ping(self) -> float:
        """Round-trip ``SELECT 1`` and return its seconds (raises ServiceUnavailable)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")
        return loop.time() - started

    def stats(self) -> dict[str, Any]:
        """Pool statistics (pooled) or connection counts (per request), JSON-ready."""
        names = {"perf": "pool", "asyncpg": "asyncpg.create_pool", "none": "connect-per-request"}
        data: dict[str, Any] = {"mode": names[self.kind], "errors": self.errors}
        if self._pool is not None:
            data.update(self._pool.stats().as_dict())
        elif self._asyncpg_pool is not None:
            data.update(size=self._asyncpg_pool.get_size(), idle=self._asyncpg_pool.get_idle_size(),
                        min_size=self._asyncpg_pool.get_min_size(), max_size=self._asyncpg_pool.get_max_size())
        else:
            data["connects"] = self.connects
        return data
