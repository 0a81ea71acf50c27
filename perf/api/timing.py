"""ASGI middleware adding ``Server-Timing`` and ``X-Cache`` to every response, and counting it in /metrics.

It is a pure ASGI wrapper (``TimingMiddleware(app, metrics=...)``) because a Nexios
function middleware costs ~170 µs a request and cannot see the body; what this one adds to a
cached read is in ``python -m perf.bench.api``'s layer table (about a third of it is counting
the request in /metrics: three prometheus_client updates, :mod:`perf.api.metrics`). Handlers
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


@dataclass(slots=True)  # one a request: slots make it cheaper to create
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


_REPLACED = (b"server-timing", b"x-cache")
_CACHE_VALUES = {status: status.encode() for status in CACHE_STATUSES}


def server_timing(db: float, cache: float, total: float) -> bytes:
    """The ``Server-Timing`` value for ``db``, ``cache`` and ``total`` seconds (``app`` is the rest, >= 0).

    >>> server_timing(0.0012, 0.00005, 0.00156)
    b'db;dur=1.20, cache;dur=0.05, app;dur=0.31, total;dur=1.56'
    >>> server_timing(0.0, 0.00002, 0.00001)
    b'db;dur=0.00, cache;dur=0.02, app;dur=0.00, total;dur=0.01'
    """
    # Formatted straight to bytes (no str to encode), and a request that never reached PostgreSQL (a
    # cached read) skips formatting its zero: ~1.3 µs instead of ~3 µs for the f-string.
    app = total - db - cache
    if app < 0.0:
        app = 0.0
    if db == 0.0:
        return b"db;dur=0.00, cache;dur=%.2f, app;dur=%.2f, total;dur=%.2f" % (cache * 1e3, app * 1e3, total * 1e3)
    return b"db;dur=%.2f, cache;dur=%.2f, app;dur=%.2f, total;dur=%.2f" % (db * 1e3, cache * 1e3, app * 1e3,
                                                                           total * 1e3)


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
        timings = RequestTimings()
        token = _current.set(timings)
        status = 0
        started = time.perf_counter()

        def send_with_timing(message: Message) -> Awaitable[None]:
            # A plain function handing back send's awaitable: no coroutine of its own per message.
            nonlocal status
            if message["type"] == "http.response.start":
                total = time.perf_counter() - started  # the one clock read of this phase
                headers = message.get("headers", ())
                if type(headers) is not list:  # any iterable of pairs: read it once
                    headers = list(headers)
                for name, _ in headers:
                    if name.lower() in _REPLACED:  # rare: the app set one itself; ours replaces it
                        headers = [(k, v) for k, v in headers if k.lower() not in _REPLACED]
                        break
                cache_status = timings.cache_status
                message["headers"] = [*headers, (b"server-timing", server_timing(timings.db, timings.cache, total)),
                                      (b"x-cache", _CACHE_VALUES.get(cache_status) or cache_status.encode())]
                status = message["status"]
            return send(message)

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
