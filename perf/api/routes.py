"""The Nexios handlers and :data:`ROUTES`, the table that registers them and documents them.

Handlers are module-level functions ``(request, response, **path_params)``: they parse
the request, call the service on the request's :class:`~perf.api.state.ApiState` and
answer JSON (orjson). The logic is in :class:`~perf.api.products.ProductService`, the
limits and error mapping in ASGI layers (:mod:`perf.api.limits`, :mod:`perf.api.errors`).
Each :class:`~perf.api.openapi.RouteSpec` also says whether the route writes (then it needs the bearer
token, :func:`check_token`) and what it takes and answers: :mod:`perf.api.openapi`
builds ``/openapi.json`` from the same table, so the document cannot drift from the code.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import time
from collections.abc import Awaitable
from typing import Any, cast

import orjson
from nexios import NexiosApp
from nexios.http import Request, Response

from perf.api.errors import ApiError, SafeRoute, clip
from perf.api.metrics import CONTENT_TYPE
from perf.api.openapi import Handler, RouteSpec, openapi_document
from perf.api.responses import JsonBytes
from perf.api.state import ApiState
from perf.api.uploads import UPLOAD_TYPES
from perf.api.validation import check_bearer, parse_id, parse_json_body, parse_paging, query_dict, validate_product
from perf.queue import QueueClosed, QueueFull, QueueUnavailable, TaskExpired


def api_state(request: Request) -> ApiState:
    """The :class:`ApiState` of the app serving ``request``."""
    return cast(ApiState, request.scope["global_state"]["api"])


def send_json(response: Response, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """Answer ``data`` encoded with orjson (``application/json``, :class:`~perf.api.responses.JsonBytes`)."""
    return response.make_response(JsonBytes(orjson.dumps(data), status, headers))


def check_token(request: Request) -> None:
    """401 unless ``Authorization: Bearer <settings.api_token>`` (compared in constant time)."""
    check_bearer(request.headers.get("authorization") or "", api_state(request).settings.api_token)


async def json_body(request: Request) -> Any:
    """The request's JSON body: 415 unless ``Content-Type: application/json``, 400 if malformed."""
    return parse_json_body(request.headers.get("content-type") or "", await request.body)


# products ---------------------------------------------------------------------------------
async def list_products(request: Request, response: Response) -> Any:
    """A page of products (``page``/``per_page``, or the keyset cursor ``after``; optional ``category``)."""
    paging = parse_paging(query_dict(request.scope["query_string"]))
    return send_json(response, await api_state(request).products.list(paging))


async def create_product(request: Request, response: Response) -> Any:
    """Create a product; 201 with ``Location``."""
    fields = validate_product(await json_body(request))
    product = await api_state(request).products.create(fields)
    return send_json(response, product, status=201, headers={"Location": f"/products/{product['id']}"})


async def get_product(request: Request, response: Response, product_id: str) -> Any:
    """One product with its category name and image URLs."""
    return send_json(response, await api_state(request).products.get(parse_id(product_id)))


async def patch_product(request: Request, response: Response, product_id: str) -> Any:
    """Change some fields of a product (``image_urls`` replaces the list)."""
    pid = parse_id(product_id)
    fields = validate_product(await json_body(request), partial=True)
    return send_json(response, await api_state(request).products.update(pid, fields))


async def delete_product(request: Request, response: Response, product_id: str) -> Any:
    """Delete a product and its images; 204."""
    await api_state(request).products.delete(parse_id(product_id))
    return response.resp(b"", status_code=204)


# uploads and tasks (the durable queue behind them is perf.queue.durable) ------------------
async def upload(request: Request, response: Response) -> Any:
    """Accept an upload for background processing: 202 with the task's status URL (429 when full).

    The task is committed to PostgreSQL before the 202 is sent: a 202 is a promise that
    survives a crash of this worker (another one picks the task up after its lease).
    """
    state = api_state(request)
    # no Content-Type means octets (RFC 9110 §8.3); a browser's cross-site "simple" types are refused
    media = (request.headers.get("content-type") or "application/octet-stream").split(";", 1)[0].strip().lower()
    if media not in UPLOAD_TYPES:
        raise ApiError(415, f"Content-Type {media[:80]!r} is not accepted for uploads: send one of "
                            f"{', '.join(UPLOAD_TYPES)}", headers={"Accept": ", ".join(UPLOAD_TYPES)})
    payload = await request.body
    if not payload:
        raise ApiError(400, "the upload is empty: send the file's bytes as the request body")
    served_by = {"X-Served-By": str(os.getpid())}
    try:
        task_id = await state.queue.submit("upload", payload)
    except QueueFull as exc:
        raise ApiError(429, str(exc), headers={"Retry-After": f"{exc.retry_after:.0f}", **served_by}) from None
    except QueueClosed:
        raise ApiError(503, "the server is shutting down; retry on another worker",
                       headers={"Retry-After": "1", "Connection": "close"}) from None
    except QueueUnavailable as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
    return send_json(response, {"task_id": task_id, "status_url": f"/tasks/{task_id}", "state": "queued"},
                     status=202, headers={"Location": f"/tasks/{task_id}", **served_by})


async def task_status(request: Request, response: Response, task_id: str) -> Any:
    """An upload task's state, attempts, timestamps and result or error; the same from every worker."""
    try:
        record = await api_state(request).queue.status(task_id)
    except TaskExpired as exc:
        raise ApiError(404, str(exc)) from None
    except QueueUnavailable as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
    if record is None:
        raise ApiError(404, f"no task with id={clip(task_id)!r}: never accepted here (ids come from POST /uploads)")
    return send_json(response, record, headers={"X-Served-By": str(os.getpid())})


# operations -------------------------------------------------------------------------------
def is_operator(request: Request) -> bool:
    """True for a loopback client, or one sending the API's bearer token: who may see internals.

    ``/metrics`` and the details of ``/health`` (pids, pool and queue figures) are for the
    machine's own scraper or an operator, not for the open internet. Behind a reverse proxy
    on the same machine every client looks local unless the proxy sends ``X-Forwarded-For``
    (uvicorn then reports the real client, as it trusts 127.0.0.1 by default).
    """
    client = request.scope.get("client")
    if client and _is_loopback(client[0]):
        return True
    try:
        check_token(request)
    except ApiError:
        return False
    return True


def require_operator(request: Request) -> None:
    """401 unless :func:`is_operator` (with the reason and the fix)."""
    if not is_operator(request):
        raise ApiError(401, f"{request.scope['path']} answers loopback clients, or others sending "
                            "'Authorization: Bearer <token>' (the API's api_token)",
                       headers={"WWW-Authenticate": 'Bearer realm="perf-api"'})


async def health(request: Request, response: Response) -> Any:
    """PostgreSQL and Redis reachability (503 without PostgreSQL; ``degraded`` without Redis).

    Others than :func:`is_operator` get only the status: no pid, no timings, no error types.
    """
    state = api_state(request)
    postgres, redis = await asyncio.gather(_check(state.db.ping()), _check(state.redis.ping()))
    status = "ok" if postgres["ok"] and redis["ok"] else ("degraded" if postgres["ok"] else "down")
    body: dict[str, Any] = {"status": status}
    if is_operator(request):
        body.update(postgres=postgres, redis=redis, pid=os.getpid())
    if not postgres["ok"]:  # the API cannot answer without PostgreSQL; without Redis it can
        return send_json(response, body, status=503, headers={"Retry-After": "1"})
    return send_json(response, body)


async def metrics(request: Request, response: Response) -> Any:
    """The whole server's metrics (every worker's), Prometheus text format; loopback or bearer token."""
    require_operator(request)
    state = api_state(request)
    await state.sampler.probe()
    return response.resp(state.metrics.exposition(), content_type=CONTENT_TYPE)


async def metrics_json(request: Request, response: Response) -> Any:
    """This worker's statistics and the server's request totals, as JSON for humans; loopback or bearer token.

    ``requests`` is the answering worker's (``pid``), ``server_requests`` every worker's:
    both read from the registry ``/metrics`` exposes, so they never disagree with it.
    """
    require_operator(request)
    state = api_state(request)
    cache, seed = state.cache, state.seed_cache
    queue = await state.sampler.probe()
    return send_json(response, {
        "pid": os.getpid(), "mode": state.settings.mode.as_dict(), "name": str(state.settings.mode),
        "requests": state.metrics.summary(), "server_requests": state.metrics.summary(server=True),
        "cache": ({**cache.stats.snapshot(), "redis_available": cache.redis_available} if cache is not None
                  else seed.stats() if seed is not None else None),
        "db": state.db.stats(), "queue": queue or None})


async def hello(request: Request, response: Response) -> Any:
    """``hello`` through Nexios (compare ``/bare/hello``: the framework's cost)."""
    return response.resp(b"hello", content_type="text/plain")


async def openapi(request: Request, response: Response) -> Any:
    """This API's OpenAPI 3.1 document."""
    return send_json(response, openapi_document(ROUTES))


@functools.lru_cache(maxsize=256)
def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a Unix socket path or a name: not a loopback address
        return False


async def _check(call: Awaitable[Any], timeout: float = 1.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        # the exception's type only: its message names internal addresses
        return {"ok": False, "status": "down", "error": type(exc).__name__}
    return {"ok": True, "status": "up", "ms": round((time.perf_counter() - started) * 1e3, 3)}


# the table ---------------------------------------------------------------------------------
_OPERATOR = {401: "not a loopback client and no (or a wrong) bearer token"}
_PAGE = {200: "a page of products", 422: "a query parameter out of range"}
_ONE = {200: "the product", 404: "no such product (or not an id)"}
_WRITE = {401: "no or wrong bearer token", 413: "body over max_body", 408: "body not sent in time",
          415: "not application/json", 400: "malformed JSON", 422: "a field is invalid",
          409: "no such category, or a concurrent change"}

ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/products", list_products, _PAGE, query=("page", "per_page", "category", "after")),
    RouteSpec("POST", "/products", create_product, {201: "created", **_WRITE}, write=True, body="product"),
    RouteSpec("GET", "/products/{product_id}", get_product, _ONE),
    RouteSpec("PATCH", "/products/{product_id}", patch_product, {**_ONE, 200: "the changed product", **_WRITE},
              write=True, body="product-patch"),
    RouteSpec("DELETE", "/products/{product_id}", delete_product,
              {204: "deleted", 401: _WRITE[401], 404: _ONE[404], 409: _WRITE[409]}, write=True),
    RouteSpec("POST", "/uploads", upload,
              {202: "accepted; poll status_url", 400: "empty body", 401: _WRITE[401], 408: _WRITE[408],
               413: _WRITE[413], 415: "a Content-Type uploads do not take", 429: "the task queue is full (Retry-After)",
               503: "shutting down or PostgreSQL unavailable (Retry-After)"},
              write=True, body="bytes", tags=("uploads",)),
    RouteSpec("GET", "/tasks/{task_id}", task_status, {200: "the task", 404: "unknown or expired task",
                                                        503: "PostgreSQL unavailable (Retry-After)"},
              tags=("uploads",)),
    RouteSpec("GET", "/health", health, {200: "PostgreSQL up (Redis may be down: degraded)",
                                         503: "PostgreSQL down"}, tags=("operations",)),
    RouteSpec("GET", "/metrics", metrics, {200: "every worker's metrics (Prometheus text)", **_OPERATOR},
              tags=("operations",)),
    RouteSpec("GET", "/metrics.json", metrics_json, {200: "this worker's statistics and the server's totals",
                                                     **_OPERATOR}, tags=("operations",)),
    RouteSpec("GET", "/hello", hello, {200: "hello"}, tags=("operations",)),
    RouteSpec("GET", "/openapi.json", openapi, {200: "this document"}, tags=("operations",)),
)


def _with_token(handler: Handler) -> Handler:
    async def write(request: Request, response: Response, **path_params: str) -> Any:
        check_token(request)
        return await handler(request, response, **path_params)

    write.__doc__, write.__name__ = handler.__doc__, handler.__name__
    return write


def register_routes(app: NexiosApp, routes: tuple[RouteSpec, ...] = ROUTES, *, direct: bool = True) -> None:
    """Add every route of ``routes`` to ``app`` (write routes behind :func:`check_token`).

    ``direct``: call handlers without Nexios' per-request wrapper (:class:`SafeRoute`).
    """
    for spec in routes:
        handler = _with_token(spec.handler) if spec.write else spec.handler
        app.add_route(SafeRoute(spec.path, handler, methods=[spec.method], exclude_from_schema=True, direct=direct))
