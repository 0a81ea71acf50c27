"""A correct, fast async connection pool, and the seed's broken one to learn from.

>>> from perf.pool import create_pool
>>> async with create_pool(database_url, min_size=2, max_size=10) as pool:
...     async with pool.acquire() as conn:
...         await conn.fetchval("SELECT 1")
...     pool.stats().wait_p99

``await create_pool(...)`` works too (then ``await pool.close()``). ``reset=`` picks what a
returned connection is cleaned of (``"always"`` (default: nothing a borrower did to its
session reaches the next one), ``"session"``, ``"none"``: see :class:`Pool`). Pool anything else by
passing ``adapter=`` (a :class:`ConnectionAdapter` subclass) instead of a URL.
:mod:`perf.pool.naive` reproduces the seed tutorial's pool: the thing NOT to do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from perf.lazy import lazy_exports
from perf.pool.adapter import ConnectionAdapter
from perf.pool.asyncpg_adapter import AsyncpgAdapter
from perf.pool.errors import PoolClosed, PoolConnectError, PoolError, PoolTimeout, PoolTooManyWaiters
from perf.pool.pool import CloseReport, Pool, ResetMode
from perf.pool.stats import PoolStats


def create_pool(dsn: str | None = None, *, adapter: ConnectionAdapter[Any] | None = None,
                min_size: int = 1, max_size: int = 10, timeout: float | None = 30.0,
                max_waiting: int | None = None, idle_timeout: float | None = 300.0,
                max_lifetime: float | None = 3600.0, jitter: float = 0.1, health_check: bool = False,
                reset: ResetMode | Callable[[Any], Awaitable[None]] = "always", reset_timeout: float = 5.0,
                maintenance_interval: float | None = None,
                init: Callable[[Any], Awaitable[None]] | None = None, **connect_kwargs: Any) -> Pool[Any]:
    """A :class:`Pool` of asyncpg connections to ``dsn`` (or of whatever ``adapter`` opens).

    Use it as ``pool = await create_pool(...)`` or ``async with create_pool(...) as pool``.
    ``init`` runs once on each new connection; ``connect_kwargs`` go to ``asyncpg.connect``
    (e.g. ``server_settings=``, ``statement_cache_size=``). See :class:`Pool` for the rest.
    """
    if adapter is None:
        if dsn is None:
            raise ValueError("create_pool needs dsn (a PostgreSQL URL, e.g. services.database_url) "
                             "or adapter= (a ConnectionAdapter); got neither")
        adapter = AsyncpgAdapter(dsn, init=init, **connect_kwargs)
    elif dsn is not None or connect_kwargs or init is not None:
        raise ValueError(f"create_pool got adapter={adapter!r} and also dsn/init/connect kwargs; "
                         "pass the connection settings to the adapter instead")
    return Pool(adapter, min_size=min_size, max_size=max_size, timeout=timeout, max_waiting=max_waiting,
                idle_timeout=idle_timeout, max_lifetime=max_lifetime, jitter=jitter,
                health_check=health_check, reset=reset, reset_timeout=reset_timeout,
                maintenance_interval=maintenance_interval)


if TYPE_CHECKING:
    from perf.pool.asyncpg_adapter import server_connections
    from perf.pool.demo_failures import drive, next_borrower_after_cancel, waits_behind_slow_connect
    from perf.pool.demo_race import (
        ASYNCPG,
        ASYNCPG_NO_RESET,
        CONNECT,
        OURS,
        OURS_ALWAYS,
        OURS_NONE,
        WHAT_IS_RESET,
        Contender,
        Contenders,
        compare_strategies,
        race,
        rank_strategies,
        run_burst,
    )
    from perf.pool.demo_reset import reset_guarantees
    from perf.pool.demo_timeline import run_timeline, sample_stats
    from perf.pool.naive import SeedPool, SeedPoolTypoFixed

# The other names a notebook uses (apparatus included), imported on first use: a process that
# imports one module of this package (the API server, a worker) pays for none of them.
_LAZY = {
    "server_connections": "perf.pool.asyncpg_adapter",
    "drive": "perf.pool.demo_failures",
    "next_borrower_after_cancel": "perf.pool.demo_failures",
    "waits_behind_slow_connect": "perf.pool.demo_failures",
    **{name: "perf.pool.demo_race" for name in (
        "ASYNCPG", "ASYNCPG_NO_RESET", "CONNECT", "OURS", "OURS_ALWAYS", "OURS_NONE", "WHAT_IS_RESET", "Contender",
        "Contenders", "compare_strategies", "race", "rank_strategies", "run_burst")},
    "reset_guarantees": "perf.pool.demo_reset",
    "SeedPool": "perf.pool.naive",
    "SeedPoolTypoFixed": "perf.pool.naive",
    "run_timeline": "perf.pool.demo_timeline",
    "sample_stats": "perf.pool.demo_timeline",
}
__all__ = [
    "ASYNCPG", "ASYNCPG_NO_RESET", "AsyncpgAdapter", "CONNECT", "CloseReport", "ConnectionAdapter", "Contender",
    "Contenders", "OURS", "OURS_ALWAYS", "OURS_NONE", "Pool", "PoolClosed", "PoolConnectError", "PoolError",
    "PoolStats", "PoolTimeout", "PoolTooManyWaiters", "ResetMode", "SeedPool", "SeedPoolTypoFixed", "WHAT_IS_RESET",
    "compare_strategies", "create_pool", "drive", "next_borrower_after_cancel", "race", "rank_strategies",
    "reset_guarantees", "run_burst", "run_timeline", "sample_stats", "server_connections",
    "waits_behind_slow_connect",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
