"""``create_app(settings)``: the product API on Nexios, with its lifespan.

>>> from perf.api.app import create_app
>>> from perf.api.settings import ApiSettings
>>> app = create_app(ApiSettings(database_url=..., redis_url=..., mode="all,-cache", products=10_000))
>>> # uvicorn.run(app, ...) or `python -m perf api --mode all,-cache`

The lifespan opens, in order, the PostgreSQL seam (perf.pool, the syllabus' asyncpg pool
or connect-per-request: :mod:`perf.api.settings`), the schema (created and, with
``products``, seeded once across workers), the multi-level cache (``mode.cache``) or
the seed's cache (mode ``baseline``), a Redis client for ``/health`` and the durable task
queue (:mod:`perf.queue.durable`). On SIGTERM uploads answer 503 for ``shutdown_grace``
seconds (:mod:`perf.api.draining`), then the queue stops (running uploads finish within
``task_drain`` seconds or go back to PostgreSQL for another worker) and the rest closes. Production
settings: ``debug=False`` always, no switch (Nexios' default ``True`` sends tracebacks to
clients), every error is JSON (:mod:`perf.api.errors`).

ASGI layers, outermost first: error boundary (counts what it answers) → timing
(``Server-Timing``, ``X-Cache``) → body guard (413, 408) → compression
(``mode.compression``) → ``/bare/...`` (only with ``bare_routes``: the product routes without the
framework, the benchmark's baseline for its cost: :mod:`perf.api.bare_routes`) → the Nexios app → error boundary
(``wrap_asgi``) → router (:data:`perf.api.routes.ROUTES`, :class:`~perf.api.errors.SafeRoute`).
``/openapi.json`` is this API's own document (:mod:`perf.api.openapi`); Nexios' default
one and its ``/docs`` and ``/redoc`` pages (scripts from a CDN at ``latest``, no
integrity hashes) are not served.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as redis
from nexios import NexiosApp

from perf.api.bare_routes import BareRoutes
from perf.api.database import Database
from perf.api.draining import drain_on_sigterm
from perf.api.errors import ErrorBoundary, SafeRoute
from perf.api.limits import BodyLimitMiddleware
from perf.api.metrics import ApiMetrics
from perf.api.openapi import TITLE, VERSION
from perf.api.products import ProductService
from perf.api.routes import register_routes
from perf.api.seed_cache import SeedCache
from perf.api.settings import ApiSettings
from perf.api.state import ApiState
from perf.api.timing import TimingMiddleware
from perf.api.uploads import upload_handlers
from perf.asgi import ASGIApp, Receive, Scope, Send
from perf.cache.multilevel import MultiLevelCache
from perf.cache.pg_invalidation import PgInvalidationBus
from perf.compression.middleware import CompressionMiddleware
from perf.db.schema import create_schema, ensure_seeded
from perf.queue.durable import DurableQueue

logger = logging.getLogger(__name__)

_SEED_LOCK = 7_007_007  # advisory lock id: one worker seeds, the others wait
#: The syllabus' ``Config.pool_min_size`` / ``pool_max_size``: mode ``baseline``'s asyncpg pool.
SEED_POOL = (5, 20)


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


def create_app(settings: ApiSettings, *, metrics_dir: str | None = None) -> ApiApp:
    """The product API for ``settings`` (see the module docstring). One instance per worker.

    ``metrics_dir``: prometheus_client's multiprocess directory, shared by every worker of
    one server (``python -m perf api`` passes it); None counts this process alone.
    """
    state = ApiState(settings, metrics=ApiMetrics(multiprocess_dir=metrics_dir))

    @asynccontextmanager
    async def lifespan(app: NexiosApp) -> AsyncIterator[dict[str, Any]]:
        await prepare_schema(settings)
        mode = settings.mode
        seed = mode.syllabus and not mode.pool  # the syllabus' asyncpg pool with its sizes
        async with Database(settings.database_url, schema=settings.schema,
                            pool="perf" if mode.pool else "asyncpg" if seed else "none",
                            min_size=SEED_POOL[0] if seed else settings.pool_min,
                            max_size=SEED_POOL[1] if seed else settings.pool_max,
                            connect_timeout=settings.db_timeout) as db:
            state.db = db
            cache = None
            bus = None
            if mode.cache:
                cache = MultiLevelCache(settings.redis_url, namespace=settings.cache_namespace,
                                        default_ttl=settings.cache_ttl, l1_max_bytes=settings.cache_l1_bytes)
            elif mode.syllabus:
                state.seed_cache = SeedCache(settings.redis_url or "redis://127.0.0.1:1",
                                             namespace=settings.cache_namespace, ttl=settings.cache_ttl)
            state.redis = redis.from_url(settings.redis_url or "redis://127.0.0.1:1", socket_timeout=0.5,
                                         socket_connect_timeout=0.5)
            try:
                if cache is not None:
                    state.cache = await cache.start()
                    if settings.cache_pg_notify:  # a write's invalidation reaches every worker, Redis up or down
                        bus = await PgInvalidationBus(settings.database_url, cache).start()
                state.products = ProductService(db, cache, mode, ttl=settings.cache_ttl, seed_cache=state.seed_cache,
                                                bus=bus)
                state.queue = await DurableQueue(
                    settings.database_url, schema=settings.schema, handlers=upload_handlers(settings.upload_delay),
                    workers=settings.task_workers, max_depth=settings.task_queue_size,
                    max_attempts=settings.task_max_attempts, backoff=settings.task_backoff,
                    timeout=settings.task_timeout, lease=settings.task_lease, retention=settings.task_retention,
                ).start()
                undo_drain = drain_on_sigterm(state.queue.stop_intake, grace=settings.shutdown_grace)
                await state.sampler.start()
                try:
                    yield {"api": state}
                finally:
                    undo_drain()
                    await state.sampler.close()
                    returned = await state.queue.stop(timeout=settings.task_drain)
                    # printed whatever the log level: the shutdown test and operators read it
                    print(f"perf api shutdown: durable queue stopped, {len(returned)} unfinished tasks returned "
                          "to the queue", file=sys.stderr, flush=True)
            finally:
                if bus is not None:
                    await bus.close()
                state.metrics.close()
                if cache is not None:
                    await cache.close()
                if state.seed_cache is not None:
                    await state.seed_cache.close()
                await state.redis.aclose()

    app = ApiNexios(debug=False, lifespan=lifespan, route_class=SafeRoute, title=TITLE,
                    version=VERSION, bridges=not settings.nexios_lean)
    app.state["api"] = state
    register_routes(app, direct=settings.nexios_lean)
    app.wrap_asgi(ErrorBoundary)  # around the router: no route, handler errors, 405
    layers = api_layers(app, state)
    return ApiApp(layers[-1][1], nexios=app, state=state, layers=layers)


def api_layers(nexios: ASGIApp, state: ApiState) -> list[tuple[str, ASGIApp]]:
    """The API's pure ASGI layers around ``nexios``, innermost first: ``[(name, app so far), ...]``.

    The last entry is the whole app; each entry is a working app of the layers up to it
    (:mod:`perf.api.demo_framework` times each one).
    """
    settings = state.settings
    layers: list[tuple[str, ASGIApp]] = []

    def wrap(name: str, layer: Callable[[ASGIApp], ASGIApp]) -> None:
        layers.append((name, layer(layers[-1][1] if layers else nexios)))

    if settings.bare_routes:  # apparatus for measuring the framework: off in the product
        wrap("/bare routes", lambda inner: BareRoutes(inner, state=state))
    if settings.mode.compression:
        wrap("compression", lambda inner: CompressionMiddleware(inner, minimum_size=1024))
    wrap("body limit", lambda inner: BodyLimitMiddleware(inner, max_body=settings.max_body,
                                                        read_timeout=settings.read_timeout))
    wrap("timing", lambda inner: TimingMiddleware(inner, metrics=state.metrics))
    # every layer above the router, in one boundary
    wrap("error boundary", lambda inner: ErrorBoundary(inner, metrics=state.metrics))
    return layers


class ApiNexios(NexiosApp):
    """``NexiosApp`` without the framework's documentation routes and, by default, its stream bridges.

    ``NexiosApp.setup()`` registers ``/openapi.json`` (a placeholder document), ``/docs``
    and ``/redoc`` (scripts from public CDNs at ``latest``); this API serves its own
    document from its route table instead (:mod:`perf.api.openapi`).

    ``NexiosApp.handle_request()`` wraps the router, on every request, in two
    ``ASGIRequestResponseBridge`` layers (its server-error and exception middleware): each
    builds a Request, a Response and an anyio memory-object stream with a task group, like
    Starlette's ``BaseHTTPMiddleware``, ~120 µs a request each (``python -m perf.bench.api``).
    This API needs neither: its :class:`~perf.api.errors.ErrorBoundary` around the router
    (``wrap_asgi``) turns every exception, Nexios' ``HTTPException``/``NotFoundException``
    included, into JSON, and it registers no exception handlers. So, with ``bridges=False``
    and no function middleware, a request goes straight to the (wrapped) router; add a
    function middleware (``app.add_middleware``) and the framework's path comes back.
    """

    def __init__(self, *args: Any, bridges: bool = False, **kwargs: Any) -> None:
        self.bridges = bridges
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        """Register nothing: the routes come from :data:`perf.api.routes.ROUTES`."""

    def handle_request(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The router directly, unless ``bridges`` or a function middleware needs the framework's chain."""
        if self.bridges or self.http_middleware:
            result: Awaitable[None] = super().handle_request(scope, receive, send)
            return result
        router: ASGIApp = self.app
        return router(scope, receive, send)


class ApiApp:
    """The ASGI app :func:`create_app` returns: pure ASGI layers around the Nexios app.

    ``nexios`` is the :class:`~nexios.NexiosApp` (routes, lifespan), ``state`` its
    :class:`ApiState`, ``settings`` the :class:`ApiSettings`, ``layers`` the
    :func:`api_layers` it is made of. The layers sit *outside*
    Nexios (not in ``wrap_asgi``, which wraps only its router), so timing covers the
    framework's cost too, and ``/bare/...`` passes through the same layers as the routes.
    """

    def __init__(self, asgi: ASGIApp, *, nexios: NexiosApp, state: ApiState,
                 layers: list[tuple[str, ASGIApp]] | None = None) -> None:
        self._asgi = asgi
        self.layers = layers or []
        self.nexios = nexios
        self.state = state
        self.settings = state.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)
