"""The product routes again as bare ASGI, under ``/bare/``: the baseline for the framework's cost.

:class:`BareRoutes` sits directly around the Nexios app, inside the same ASGI layers
(error boundary, timing, body limit, compression) and calls the same
:class:`~perf.api.products.ProductService`, validation and token check as the Nexios
handlers in :mod:`perf.api.routes`. What differs is only what the framework does: no
router, no request or response objects, no per-request context; a dict lookup on the path
and two ``send`` calls. So on one server, ``GET /products/7`` and ``GET /bare/products/7``
answer the same JSON from the same cache, and the difference in time is what Nexios costs
(``python -m perf.bench.api``, notebook 09 "the framework").

=================================  =========================================
``GET /bare/hello``                ``hello`` (compare ``GET /hello``)
``GET /bare/products``             a page (``page``, ``per_page``, ``category``, ``after``)
``POST /bare/products``            create (bearer token, JSON body)
``GET /bare/products/{id}``        one product
``PATCH /bare/products/{id}``      change some fields (bearer token, JSON body)
``DELETE /bare/products/{id}``     delete (bearer token)
=================================  =========================================

Anything else under ``/bare/`` is a JSON 404 (a wrong method a 405 with ``Allow``); every
other path goes to the Nexios app unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from perf.api.errors import ApiError
from perf.api.metrics import set_route
from perf.api.state import ApiState
from perf.api.validation import check_bearer, parse_id, parse_json_body, parse_paging, query_dict, validate_product
from perf.asgi import ASGIApp, Receive, Scope, Send

BARE_PREFIX = "/bare"
BARE_PATH = "/bare/hello"
_ITEM = "/bare/products/"
_HELLO = ({"type": "http.response.start", "status": 200,
           "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]},
          {"type": "http.response.body", "body": b"hello"})


async def send_json(send: Send, data: Any, *, status: int = 200,
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer ``data`` as ``application/json`` (orjson), as :func:`perf.api.routes.send_json` does."""
    body = orjson.dumps(data)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or ())]})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str:
    """The first value of request header ``name`` (lower-case bytes), or ``""``."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the body limit layer outside bounds its size and pace)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "client disconnected before the request body was read")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class BareRoutes:
    """``BareRoutes(nexios_app, state=api_state)``: ``/bare/...`` answered here, the rest by ``app``."""

    def __init__(self, app: ASGIApp, *, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(BARE_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if path == BARE_PATH and method in ("GET", "HEAD"):
            set_route(scope, BARE_PATH)
            await send(dict(_HELLO[0]))
            await send(dict(_HELLO[1]))
        elif path == "/bare/products":
            set_route(scope, path)
            await self._collection(method, scope, receive, send)
        elif path.startswith(_ITEM) and "/" not in path[len(_ITEM):]:
            set_route(scope, "/bare/products/{product_id}")
            await self._item(method, path[len(_ITEM):], scope, receive, send)
        else:
            raise ApiError(404, f"no route for {method} {path[:200]}")

    def _authorize(self, scope: Scope) -> None:
        check_bearer(header(scope, b"authorization"), self.state.settings.api_token)

    async def _json(self, scope: Scope, receive: Receive) -> Any:
        return parse_json_body(header(scope, b"content-type"), await read_body(receive))

    async def _collection(self, method: str, scope: Scope, receive: Receive, send: Send) -> None:
        products = self.state.products
        if method in ("GET", "HEAD"):
            await send_json(send, await products.list(parse_paging(query_dict(scope["query_string"]))))
        elif method == "POST":
            self._authorize(scope)
            product = await products.create(validate_product(await self._json(scope, receive)))
            await send_json(send, product, status=201, headers=[(b"location", f"/products/{product['id']}".encode())])
        else:
            raise _not_allowed(method, scope["path"], "GET, HEAD, POST")

    async def _item(self, method: str, raw_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        products = self.state.products
        if method in ("GET", "HEAD"):
            await send_json(send, await products.get(parse_id(raw_id)))
        elif method == "PATCH":
            self._authorize(scope)
            product_id = parse_id(raw_id)
            fields = validate_product(await self._json(scope, receive), partial=True)
            await send_json(send, await products.update(product_id, fields))
        elif method == "DELETE":
            self._authorize(scope)
            await products.delete(parse_id(raw_id))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            raise _not_allowed(method, scope["path"], "DELETE, GET, HEAD, PATCH")


def _not_allowed(method: str, path: str, allow: str) -> ApiError:
    return ApiError(405, f"method {method} not allowed on {path[:200]}; allowed: {allow}", headers={"Allow": allow})

