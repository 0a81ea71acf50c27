"""The product API: Nexios + PostgreSQL + multi-level cache + background task queue.

Serve it: ``python -m perf api [--workers N] [--port P] [--mode MODE] [--products N] [--schema S]``
(see :mod:`perf.api.cli`), or in Python::

    from perf.api.app import create_app
    from perf.api.settings import ApiSettings
    app = create_app(ApiSettings(database_url=..., redis_url=..., mode="all,-cache"))

or as a subprocess on a free port (tests, benchmarks, notebooks)::

    from perf.api.server import ApiServer
    settings = ApiSettings(database_url=..., redis_url=..., mode="baseline", schema="nb_api", products=10_000)
    with ApiServer(settings) as server:
        ...  # server.url; writes send server.auth_headers (Authorization: Bearer <api_token>)

Endpoints (:data:`perf.api.routes.ROUTES`, described by ``GET /openapi.json``):
``GET/POST /products``, ``GET/PATCH/DELETE /products/{id}``, ``POST /uploads`` (202 +
task id, 429 when the queue is full), ``GET /tasks/{id}``, ``GET /health``,
``GET /metrics`` (Prometheus text, every worker's), ``GET /metrics.json``, ``GET /hello``, and
the product routes again as raw ASGI under ``/bare/``
(``/bare/hello``, ``/bare/products``...: the baseline for the framework's cost). Writes need
``Authorization: Bearer <api_token>``; POST/PATCH bodies are ``application/json``. Every
response carries ``Server-Timing`` (db, cache, app, total) and ``X-Cache``; every error
is JSON ``{"error", "status"[, "errors"]}``, never a 5xx for bad input.

``mode`` (:class:`perf.api.settings.ApiMode`) switches each optimisation on or off:
``cache``, ``pool``, ``keyset``, ``compression``, ``join``; ``"all"`` and
``"baseline"`` are the two ends, ``"all,-cache"`` / ``"baseline,+pool"`` the steps between.

One idea per module: :mod:`~perf.api.settings` (the single source of settings; the CLI
flags derive from it), :mod:`~perf.api.app` (factory, lifespan, layer order),
:mod:`~perf.api.state`, :mod:`~perf.api.routes` (handlers + route table),
:mod:`~perf.api.openapi`, :mod:`~perf.api.protocol` (uvicorn: request heads bounded),
:mod:`~perf.api.products` (service:
cached reads, writes, invalidation), :mod:`~perf.api.database` (pool or connect per
request, 503 mapping), :mod:`~perf.api.validation`, :mod:`~perf.api.errors` (JSON errors,
the Nexios 405 fix, routes without the framework's per-request wrapper), :mod:`~perf.api.limits`
(413, 408), :mod:`~perf.api.timing`, :mod:`~perf.api.metrics` (Prometheus, summed over workers),
:mod:`~perf.api.sampling` (cache, pool, queue and services as metrics), :mod:`~perf.api.bare_routes`,
:mod:`~perf.api.uploads`,
:mod:`~perf.api.cli`, :mod:`~perf.api.server`.

The front door offers the product's names a notebook uses (``from perf.api import ApiServer,
ApiSettings``), loaded on first use so the server process imports only what it serves. The
framework-cost apparatus (:mod:`perf.api.demo_framework`) is offered by :mod:`perf.lab`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perf.lazy import lazy_exports

if TYPE_CHECKING:
    from perf.api.app import api_layers
    from perf.api.products import ProductService
    from perf.api.routes import get_product
    from perf.api.server import ApiServer
    from perf.api.settings import ApiSettings, new_token

# The other names a notebook uses (apparatus included), imported on first use: a process that
# imports one module of this package (the API server, a worker) pays for none of them.
_LAZY = {
    "api_layers": "perf.api.app",
    "ProductService": "perf.api.products",
    "get_product": "perf.api.routes",
    "ApiServer": "perf.api.server",
    "ApiSettings": "perf.api.settings",
    "new_token": "perf.api.settings",
}
__all__ = [
    "ApiServer", "ApiSettings", "ProductService", "api_layers", "get_product", "new_token",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
