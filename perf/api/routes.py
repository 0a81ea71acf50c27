"""The Nexios handlers: parse the request, call the service, answer JSON (orjson).

Handlers stay thin; the logic is in :class:`~perf.api.products.ProductService`, the
limits and error mapping in ASGI middleware (:mod:`perf.api.limits`, :mod:`perf.api.errors`).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import orjson
from nexios import NexiosApp

from perf.api.errors import ApiError
from perf.api.validation import parse_id, parse_json, parse_paging, validate_product
from perf.queue import QueueClosed, QueueFull
from perf.queue.durable import QueueUnavailable, TaskExpired

if TYPE_CHECKING:
    from perf.api.app import ApiState


def send_json(response: Any, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """Answer ``data`` encoded with orjson (``application/json``)."""
    return response.resp(orjson.dumps(data), status_code=status, headers=headers, content_type="application/json")


def register_routes(app: NexiosApp, state: ApiState) -> None:
    """Add every endpoint to ``app``; handlers find their services on ``state`` (filled by the lifespan)."""

    @app.get("/products")
    async def list_products(request, response):  # noqa: ANN001, ANN202
        paging = parse_paging(request.query_params)
        return send_json(response, await state.products.list(paging))

    @app.post("/products")
    async def create_product(request, response):  # noqa: ANN001, ANN202
        fields = validate_product(parse_json(await request.body))
        product = await state.products.create(fields)
        return send_json(response, product, status=201, headers={"Location": f"/products/{product['id']}"})

    @app.get("/products/{product_id}")
    async def get_product(request, response, product_id):  # noqa: ANN001, ANN202
        return send_json(response, await state.products.get(parse_id(product_id)))

    @app.patch("/products/{product_id}")
    async def patch_product(request, response, product_id):  # noqa: ANN001, ANN202
        product_id = parse_id(product_id)
        fields = validate_product(parse_json(await request.body), partial=True)
        return send_json(response, await state.products.update(product_id, fields))

    @app.delete("/products/{product_id}")
    async def delete_product(request, response, product_id):  # noqa: ANN001, ANN202
        await state.products.delete(parse_id(product_id))
        return response.resp(b"", status_code=204)

    @app.post("/uploads")
    async def upload(request, response):  # noqa: ANN001, ANN202
        payload = await request.body
        if not payload:
            raise ApiError(400, "the upload is empty: send the file's bytes as the request body")
        try:  # durable (committed to PostgreSQL) once submit returns: the 202 is a promise
            task_id = await state.queue.submit("upload", payload)
        except QueueFull as exc:
            raise ApiError(429, str(exc), headers={"Retry-After": f"{exc.retry_after:.0f}",
                                                   "X-Served-By": str(os.getpid())}) from None
        except QueueClosed:
            raise ApiError(503, "the server is shutting down; retry on another worker",
                           headers={"Retry-After": "1", "Connection": "close"}) from None
        except QueueUnavailable as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
        return send_json(response, {"task_id": task_id, "status_url": f"/tasks/{task_id}", "state": "queued"},
                         status=202, headers={"Location": f"/tasks/{task_id}", "X-Served-By": str(os.getpid())})

    @app.get("/tasks/{task_id}")
    async def task_status(request, response, task_id):  # noqa: ANN001, ANN202
        try:
            record = await state.queue.status(task_id)
        except TaskExpired as exc:
            raise ApiError(404, str(exc)) from None
        except QueueUnavailable as exc:
            raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
        if record is None:
            raise ApiError(404, f"no task with id={task_id!r}: never accepted here (ids come from POST /uploads)")
        return send_json(response, record, headers={"X-Served-By": str(os.getpid())})  # any worker answers

    @app.get("/health")
    async def health(request, response):  # noqa: ANN001, ANN202
        checks = await asyncio.gather(_check(state.db.ping()), _check(state.redis.ping()))
        postgres, redis = checks
        status = "ok" if postgres["ok"] and redis["ok"] else ("degraded" if postgres["ok"] else "down")
        body = {"status": status, "postgres": postgres, "redis": redis, "pid": os.getpid()}
        if not postgres["ok"]:  # the API cannot answer without PostgreSQL; without Redis it can
            return send_json(response, body, status=503, headers={"Retry-After": "1"})
        return send_json(response, body)

    @app.get("/metrics")
    async def metrics(request, response):  # noqa: ANN001, ANN202
        cache = state.cache
        return send_json(response, {
            "pid": os.getpid(), "mode": state.settings.mode.as_dict(), "requests": state.stats.snapshot(),
            "cache": None if cache is None else {**cache.stats.snapshot(), "redis_available": cache.redis_available},
            "db": state.db.stats(), "queue": await state.queue.stats(),
            "fastpath_served": None if state.fastpath is None else state.fastpath.served})

    @app.get("/hello")
    async def hello(request, response):  # noqa: ANN001, ANN202
        return response.resp(b"hello", content_type="text/plain")


async def _check(call: Any, timeout: float = 1.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1e3, 3)}
