"""The product's two cached reads on bare Starlette: the yardstick for what Nexios and our layers cost.

Issue #29 asks for the product's cached routes within 10% of the same logic on bare
Starlette, served the same way. The twin is that logic and nothing else:

* the **same service**: the product app is created for the same settings and its lifespan
  runs (pool, multi-level cache, task queue, schema), and the twin's two handlers call its
  :class:`~perf.api.products.ProductService` with the same validation
  (:func:`~perf.api.validation.parse_id`, :func:`~perf.api.validation.parse_paging`);
* the **same server**: uvicorn through :func:`perf.api.cli.serve_uvicorn` (uvloop, our
  httptools protocol, one worker);
* **without** our ASGI layers (error boundary, Server-Timing and metrics, body limit,
  compression negotiation) and without Nexios: a Starlette ``Route`` per path and a
  ``Response`` of the orjson bytes, as a Starlette user writes it.

``GET /products/{id}`` and ``GET /products`` answer the same JSON bodies as the product.
Starlette is installed for this benchmark only (``pip install starlette==1.10.0``), never a
dependency of the product: :func:`starlette_available` says whether it is here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from perf.api.app import create_app
from perf.api.cli import SETTINGS_ENV, serve_uvicorn
from perf.api.errors import ApiError
from perf.api.settings import ApiSettings
from perf.api.validation import parse_id, parse_paging, query_dict
from perf.asgi import ASGIApp, Receive, Scope, Send
from perf.services.server_process import ServerProcess

#: What to install for the comparison (the version it was written against).
STARLETTE = "starlette==1.10.0"


def starlette_available() -> bool:
    """True when Starlette can be imported (it is not among the product's requirements)."""
    return importlib.util.find_spec("starlette") is not None


def create_twin(settings: ApiSettings) -> ASGIApp:
    """The twin for ``settings``: lifespan events to the product app, HTTP to two Starlette routes."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    product_app = create_app(settings)
    state = product_app.state

    def answer(data: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    async def get_product(request: Request) -> Response:
        try:
            return answer(await state.products.get(parse_id(request.path_params["product_id"])))
        except ApiError as error:
            return Response(error.body(), status_code=error.status, media_type="application/json")

    async def list_products(request: Request) -> Response:
        try:
            return answer(await state.products.list(parse_paging(query_dict(request.scope["query_string"]))))
        except ApiError as error:
            return Response(error.body(), status_code=error.status, media_type="application/json")

    http = Starlette(routes=[Route("/products/{product_id}", get_product), Route("/products", list_products)])

    async def twin(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the product's own startup and shutdown: the same pool and cache
            await product_app(scope, receive, send)
        else:
            await http(scope, receive, send)

    return twin


def twin_app() -> ASGIApp:
    """uvicorn factory: the twin for the settings in ``PERF_API_SETTINGS``."""
    return create_twin(ApiSettings.from_json(os.environ[SETTINGS_ENV]))


class TwinServer(ServerProcess):
    """The twin served by uvicorn in a child process (``python -m perf.bench.starlette_twin --port N``)."""

    def __init__(self, settings: ApiSettings, *, cpu: Sequence[int] | None = None) -> None:
        if not starlette_available():
            raise RuntimeError(f"the Starlette twin needs Starlette, which the product does not install: "
                               f"pip install {STARLETTE}")
        super().__init__(name=f"starlette-{settings.schema}", cpu=cpu, startup_timeout=60.0, stop_timeout=30.0)
        self.command = [sys.executable, "-m", "perf.bench.starlette_twin", "--port", str(self.port)]
        self.env = {SETTINGS_ENV: settings.to_json()}


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 8001
    serve_uvicorn("perf.bench.starlette_twin:twin_app", host="127.0.0.1", port=port)
