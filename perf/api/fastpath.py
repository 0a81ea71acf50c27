"""Serve cache hits for ``GET /products/{id}`` below the framework (mode switch ``fastpath``).

``python -m perf.bench.api`` shows Nexios costing ~0.4 ms of server CPU per request on
this 2-core machine (over 1 ms when it is busy), against a few µs for a bare ASGI answer:
for a cached read, the framework *is* the cost. This pure ASGI layer looks the product up with the same
:class:`~perf.cache.multilevel.MultiLevelCache` (``cache.get``: L1, then Redis) and,
on a hit, answers directly with the JSON the route would have produced. A miss, a
Redis outage or any other path falls through to Nexios unchanged, so invalidation,
errors and headers behave exactly as on the normal path.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import orjson

from perf.api.timing import CACHE_SOURCE, current_timings, set_cache_status
from perf.asgi import ASGIApp, Message, Scope
from perf.cache.multilevel import MultiLevelCache

_PREFIX = "/products/"
_MAX_ID_DIGITS = 18  # anything longer is not a bigint id: leave it to the route (404)


class ProductFastPath:
    """``ProductFastPath(app, cache=lambda: state.cache)``: ``cache()`` None (not started, Redis-less) falls through."""

    def __init__(self, app: ASGIApp, *, cache: Callable[[], MultiLevelCache | None]) -> None:
        self.app = app
        self.cache = cache
        self.served = 0

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        cache = self.cache()
        path = scope.get("path", "")
        if (cache is not None and scope["type"] == "http" and scope["method"] == "GET"
                and path.startswith(_PREFIX)):
            raw = path[len(_PREFIX):]
            # ASCII only: str.isdigit() is also true for "²" and "١٢", which int() rejects or aliases
            if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_ID_DIGITS and raw[0] != "0":
                started = time.perf_counter()
                result = await cache.get(f"product:{int(raw)}")
                if result.found:
                    timings = current_timings()
                    if timings is not None:
                        timings.cache += time.perf_counter() - started
                    set_cache_status(CACHE_SOURCE[result.source])
                    body = orjson.dumps(result.value)
                    self.served += 1
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
