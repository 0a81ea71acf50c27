"""ASGI middleware adding ``Server-Timing`` and ``X-Cache`` to every response, and counting it in /metrics.

It is a pure ASGI wrapper (``TimingMiddleware(app, metrics=...)``) because a Nexios
function middleware costs ~170 µs a request and cannot see the body; this one costs a
few µs (counting the request in /metrics adds a few more: :mod:`perf.api.metrics`). Handlers
report where the time went through the request's :class:`RequestTimings`
(a context variable set here)::

    with timed("db"):
        row = await conn.fetchrow(...)
    set_cache_status("hit-l1")

``Server-Timing: db;dur=1.20, cache;dur=0.05, app;dur=0.31, total;dur=1.56`` (ms; ``app``
is total minus db and cache), ``X-Cache: hit-l1 | hit-l2 | miss | bypass``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from perf.api.metrics import ROUTE_KEY, UNMATCHED, ApiMetrics
from perf.asgi import ASGIApp, Message, Scope

CACHE_STATUSES = ("hit-l1", "hit-l2", "miss", "bypass")
#: MultiLevelCache's ``CacheResult.source`` → the ``X-Cache`` value.
CACHE_SOURCE = {"l1": "hit-l1", "l2": "hit-l2", "miss": "miss", "bypass": "bypass"}


@dataclass
class RequestTimings:
    """Seconds spent in PostgreSQL and in the cache during one request, and its cache status."""

    db: float = 0.0
    cache: float = 0.0
    cache_status: str = "bypass"


_current: contextvars.ContextVar[RequestTimings | None] = contextvars.ContextVar("perf_api_timings", default=None)


def current_timings() -> RequestTimings | None:
    """This request's timings (None outside a request served through :class:`TimingMiddleware`)."""
    return _current.get()


@contextmanager
def timed(kind: str) -> Iterator[None]:
    """Add the block's wall time to this request's ``db`` or ``cache`` time."""
    if kind not in ("db", "cache"):
        raise ValueError(f"kind={kind!r} must be 'db' or 'cache'")
    started = time.perf_counter()
    try:
        yield
    finally:
        timings = _current.get()
        if timings is not None:
            setattr(timings, kind, getattr(timings, kind) + time.perf_counter() - started)


def set_cache_status(status: str) -> None:
    """Record this request's ``X-Cache`` value (``hit-l1``, ``hit-l2``, ``miss`` or ``bypass``)."""
    if status not in CACHE_STATUSES:
        raise ValueError(f"status={status!r} must be one of {CACHE_STATUSES}")
    timings = _current.get()
    if timings is not None:
        timings.cache_status = status


class TimingMiddleware:
    """Pure ASGI: sets up :class:`RequestTimings`, adds the headers at ``http.response.start``.

    ``metrics``: count each response in :class:`~perf.api.metrics.ApiMetrics` by its route
    template (the router put it in the scope), status and ``X-Cache``, with its time to
    the last body byte, and the requests in flight.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        timings = RequestTimings()
        token = _current.set(timings)
        status = 0

        async def send_with_timing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                total = time.perf_counter() - started
                app_time = max(total - timings.db - timings.cache, 0.0)
                value = (f"db;dur={timings.db * 1e3:.2f}, cache;dur={timings.cache * 1e3:.2f}, "
                         f"app;dur={app_time * 1e3:.2f}, total;dur={total * 1e3:.2f}")
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"server-timing", b"x-cache")]
                headers += [(b"server-timing", value.encode()), (b"x-cache", timings.cache_status.encode())]
                message["headers"] = headers
                status = message["status"]
            await send(message)

        metrics = self.metrics
        if metrics is None:
            try:
                await self.app(scope, receive, send_with_timing)
            finally:
                _current.reset(token)
            return
        metrics.active += 1
        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _current.reset(token)
            metrics.active -= 1
            if status:  # else no answer passed here: the outer error boundary counts the one it sends
                metrics.record(scope["method"], scope.get(ROUTE_KEY, UNMATCHED), status, timings.cache_status,
                               time.perf_counter() - started)
