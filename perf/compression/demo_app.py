"""A small Nexios app to measure compression end to end, and its command line.

``python -m perf.compression.demo_app --mode asgi --port 8000 [--levels br=4,gzip=6]``
serves it with uvicorn (debug off). ``mode`` is ``none`` (no compression), ``naive``
(the seed's function middleware, which compresses nothing) or ``asgi``
(:class:`~perf.compression.middleware.CompressionMiddleware` via ``wrap_asgi``).

Routes: ``/products?size=N`` (a product-list JSON of about N bytes), ``/stream?chunks=N&size=M``
(an NDJSON body streamed in N chunks of about M bytes), ``/events`` (``text/event-stream``),
``/private?q=...`` (reflects input; opts out of compression), ``/empty`` (204).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Mapping, Sequence
from functools import lru_cache, partial
from typing import Any

from nexios import NexiosApp
from nexios.http.request import Request
from nexios.http.response import NexiosResponse

from perf.compression.codecs import PREFERENCE
from perf.compression.middleware import CompressionMiddleware, disable_compression
from perf.compression.naive import create_naive_compression_middleware
from perf.compression.payloads import product_list_json

MODES = ("none", "naive", "asgi")


@lru_cache(maxsize=32)
def _payload(size: int) -> bytes:
    return product_list_json(size)


def create_demo_app(*, mode: str = "asgi", encodings: Sequence[str] = PREFERENCE,
                    levels: Mapping[str, int] | None = None, minimum_size: int = 1024) -> NexiosApp:
    """The demo Nexios app with compression ``mode`` (``none``, ``naive`` or ``asgi``)."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is unknown: use one of {MODES}")
    app = NexiosApp(debug=False)  # Nexios defaults to debug=True, which leaks tracebacks

    @app.get("/products")
    async def products(request: Request, response: NexiosResponse) -> Any:
        size = min(int(request.query_params.get("size", "10000")), 10_000_000)
        return response.resp(_payload(size), content_type="application/json")

    @app.get("/stream")
    async def stream(request: Request, response: NexiosResponse) -> Any:
        chunks = min(int(request.query_params.get("chunks", "10")), 100_000)
        size = min(int(request.query_params.get("size", "1000")), 1_000_000)

        async def lines() -> AsyncIterator[bytes]:
            line = _payload(size)[: max(size - 1, 0)] + b"\n"  # orjson output has no newlines
            for _ in range(chunks):
                yield line

        return response.stream(lines(), content_type="application/x-ndjson")

    @app.get("/events")
    async def events(request: Request, response: NexiosResponse) -> Any:
        async def sse() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"id: {i}\ndata: {'x' * 2000}\n\n".encode()

        return response.stream(sse(), content_type="text/event-stream")

    @app.get("/private")
    async def private(request: Request, response: NexiosResponse) -> Any:
        echo = request.query_params.get("q", "")
        body = {"you_searched": echo, "csrf_token": "s3cr3t" * 4, "padding": "." * 4000}
        return disable_compression(response.json(body))  # reflects input next to a secret: BREACH

    @app.get("/empty")
    async def empty(request: Request, response: NexiosResponse) -> Any:
        return response.resp(b"", status_code=204)

    if mode == "naive":
        app.add_middleware(create_naive_compression_middleware())
    elif mode == "asgi":
        # partial, because wrap_asgi types its **kwargs as dicts (nexios' annotation, not its behaviour)
        app.wrap_asgi(partial(CompressionMiddleware, minimum_size=minimum_size, encodings=tuple(encodings),
                              levels=dict(levels or {})))
    return app


def _parse_levels(text: str) -> dict[str, int]:
    levels = {}
    for item in filter(None, text.split(",")):
        name, _, level = item.partition("=")
        if not level.isdigit():
            raise SystemExit(f"--levels item {item!r} must read name=level, e.g. br=4")
        levels[name.strip()] = int(level)
    return levels


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the demo app with uvicorn (uvloop + httptools, no access log)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="asgi")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--encodings", default=",".join(PREFERENCE), help="codings offered, best first")
    parser.add_argument("--levels", default="", help="e.g. br=4,gzip=6")
    parser.add_argument("--minimum-size", type=int, default=1024)
    args = parser.parse_args(argv)
    encodings = tuple(filter(None, args.encodings.split(",")))
    app = create_demo_app(mode=args.mode, encodings=encodings, levels=_parse_levels(args.levels),
                          minimum_size=args.minimum_size)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", lifespan="off")


if __name__ == "__main__":
    main()
