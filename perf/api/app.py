"""``create_app(settings)``: the product API on Nexios, with its lifespan.

>>> from perf.api.app import create_app
>>> from perf.api.settings import ApiSettings
>>> app = create_app(ApiSettings(database_url=..., redis_url=..., mode="all,-cache", products=10_000))
>>> # uvicorn.run(app, ...) or `python -m perf api --mode all,-cache`

The lifespan opens, in order, the PostgreSQL seam (pool or connect-per-request), the
schema (created and, with ``products``, seeded once across workers), the
multi-level cache (``mode.cache``), a Redis client for ``/health`` and the durable task
queue (:mod:`perf.queue.durable`). On SIGTERM uploads answer 503 for ``shutdown_grace``
seconds (:mod:`perf.api.draining`), then the queue stops (running uploads finish within
``task_drain`` seconds or go back to PostgreSQL for another worker) and the rest closes. Production
settings: ``debug=False`` (Nexios' default ``True`` sends tracebacks to clients), every
error is JSON (:mod:`perf.api.errors`).

ASGI layers, outermost first: ``/bare/hello`` → timing (``Server-Timing``, ``X-Cache``)
→ body limit (413) → compression (``mode.compression``) → cached-read fast path
(``mode.fastpath``) → the Nexios app → error boundary (``wrap_asgi``) → router.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as redis
from nexios import NexiosApp

from perf.api.database import Database
from perf.api.demo_bare import with_bare_hello
from perf.api.draining import drain_on_sigterm
from perf.api.errors import ErrorBoundary, SafeRoute
from perf.api.fastpath import ProductFastPath
from perf.api.limits import BodyLimitMiddleware
from perf.api.products import ProductService
from perf.api.routes import register_routes
from perf.api.settings import ApiSettings
from perf.api.timing import RequestStats, TimingMiddleware
from perf.api.uploads import upload_handlers
from perf.cache.multilevel import MultiLevelCache
from perf.compression.middleware import CompressionMiddleware
from perf.db.schema import create_schema, ensure_seeded
from perf.queue.durable import DurableQueue

logger = logging.getLogger(__name__)

_SEED_LOCK = 7_007_007  # advisory lock id: one worker seeds, the others wait


class ApiState:
    """The services one app instance (one worker process) owns; set by the lifespan."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.db: Database = None  # type: ignore[assignment]
        self.cache: MultiLevelCache | None = None
        self.redis: redis.Redis = None  # type: ignore[assignment]
        self.queue: DurableQueue = None  # type: ignore[assignment]
        self.products: ProductService = None  # type: ignore[assignment]
        self.fastpath: ProductFastPath | None = None


async def prepare_schema(settings: ApiSettings) -> None:
    """Create the API's schema and tables, and seed ``settings.products`` products once."""
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        # Lock first: CREATE SCHEMA IF NOT EXISTS is not atomic either, and two workers
        # starting together both try to insert the namespace (unique violation).
        await conn.execute("SELECT pg_advisory_lock($1)", _SEED_LOCK)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{settings.schema}"')  # identifier validated
            await conn.execute(f'SET search_path TO "{settings.schema}"')
            if settings.products > 0:
                await ensure_seeded(conn, products=settings.products)
            else:
                await create_schema(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _SEED_LOCK)
    finally:
        await conn.close(timeout=5)


def create_app(settings: ApiSettings) -> ApiApp:
    """The product API for ``settings`` (see the module docstring). One instance per worker."""
    state = ApiState(settings)

    @asynccontextmanager
    async def lifespan(app: NexiosApp) -> AsyncIterator[dict[str, Any]]:
        await prepare_schema(settings)
        mode = settings.mode
        async with Database(settings.database_url, schema=settings.schema, pooled=mode.pool,
                            min_size=settings.pool_min, max_size=settings.pool_max) as db:
            state.db = db
            cache = None
            if mode.cache:
                cache = MultiLevelCache(settings.redis_url, namespace=settings.cache_namespace,
                                        default_ttl=settings.cache_ttl)
            state.redis = redis.from_url(settings.redis_url or "redis://127.0.0.1:1", socket_timeout=0.5,
                                         socket_connect_timeout=0.5)
            try:
                if cache is not None:
                    state.cache = await cache.start()
                state.products = ProductService(db, cache, mode, ttl=settings.cache_ttl)
                state.queue = await DurableQueue(
                    settings.database_url, schema=settings.schema, handlers=upload_handlers(settings.upload_delay),
                    workers=settings.task_workers, max_depth=settings.task_queue_size,
                    max_attempts=settings.task_max_attempts, backoff=settings.task_backoff,
                    timeout=settings.task_timeout, lease=settings.task_lease, retention=settings.task_retention,
                ).start()
                undo_drain = drain_on_sigterm(state.queue.stop_intake, grace=settings.shutdown_grace)
                try:
                    yield {"api": state}
                finally:
                    undo_drain()
                    returned = await state.queue.stop(timeout=settings.task_drain)
                    # printed whatever the log level: the shutdown test and operators read it
                    print(f"perf api shutdown: durable queue stopped, {len(returned)} unfinished tasks returned "
                          "to the queue", file=sys.stderr, flush=True)
            finally:
                if cache is not None:
                    await cache.close()
                await state.redis.aclose()

    app = NexiosApp(debug=settings.debug, lifespan=lifespan, route_class=SafeRoute)
    app.state["api"] = state
    register_routes(app, state)
    app.wrap_asgi(ErrorBoundary)  # around the router: no route, handler errors, 405
    outer: Any = app
    if settings.mode.cache and settings.mode.fastpath:
        outer = state.fastpath = ProductFastPath(outer, state=state)
    if settings.mode.compression:
        outer = CompressionMiddleware(outer, minimum_size=1024)
    outer = BodyLimitMiddleware(outer, max_body=settings.max_body)
    outer = TimingMiddleware(outer, stats=state.stats)
    return ApiApp(with_bare_hello(outer), nexios=app, state=state)


class ApiApp:
    """The ASGI app :func:`create_app` returns: pure ASGI layers around the Nexios app.

    ``nexios`` is the :class:`~nexios.NexiosApp` (routes, lifespan), ``state`` its
    :class:`ApiState`, ``settings`` the :class:`ApiSettings`. The layers sit *outside*
    Nexios (not in ``wrap_asgi``, which wraps only its router, inside the framework's two
    per-request middleware bridges), so timing covers the framework's cost too and the
    fast path and ``/bare/hello`` skip it.
    """

    def __init__(self, asgi: Any, *, nexios: NexiosApp, state: ApiState) -> None:
        self._asgi = asgi
        self.nexios = nexios
        self.state = state
        self.settings = state.settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)
