"""A bare ASGI ``hello`` in front of the Nexios app: the baseline for the framework tax.

``with_bare_hello(app)`` answers ``GET /bare/hello`` itself (no routing, no request or
response objects, no middleware) and hands everything else to ``app``. Served next to
Nexios' ``GET /hello`` on the same server, the difference between them is what the
framework costs per request (``python -m perf.bench.api`` measures it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from perf.asgi import ASGIApp, Scope

BARE_PATH = "/bare/hello"
_START = {"type": "http.response.start", "status": 200,
          "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]}
_BODY = {"type": "http.response.body", "body": b"hello"}


def with_bare_hello(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that ``/bare/hello`` is answered by raw ASGI messages."""

    async def asgi(scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope["path"] == BARE_PATH:
            await send(dict(_START))
            await send(dict(_BODY))
            return
        await app(scope, receive, send)

    return asgi
