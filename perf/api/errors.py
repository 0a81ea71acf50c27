"""Errors as JSON, never a traceback: :class:`ApiError`, the ASGI boundary, the 405 fix.

* Handlers raise :class:`ApiError` (status, message, optional per-field ``errors`` and headers).
* :class:`ErrorBoundary` turns ApiError, Nexios' "no route" and any unexpected exception
  into a JSON body; an unexpected one is logged with its traceback on the server and
  answered ``500 {"error": ...}``. The app has two: one around the router (inside
  Nexios, whose own bridges would answer text/plain) and one around every layer
  (timing, body limit, compression, /bare routes), which counts what it answers in
  ``/metrics`` because the timing layer never saw that response.
* :meth:`ApiError.body` cannot fail: a value orjson refuses (an int over 64 bits, a
  lone surrogate) is rendered by the standard library, else replaced by a constant.
* :class:`SafeRoute` fixes Nexios 3.12.3's ``Route.handle``, which on a wrong method
  *replaces the route's app* with a 405 response, so the route answers 405 forever.
  Ours raises ``405`` (with an ``Allow`` listing every method of that path) and leaves
  the route alone.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from nexios.exceptions import HTTPException, NotFoundException
from nexios.http import Request
from nexios.http.request import ClientDisconnect
from nexios.routing import Route

from perf.api.metrics import ROUTE_KEY, UNMATCHED, ApiMetrics, set_route
from perf.api.responses import RouteResponse
from perf.asgi import ASGIApp, Message, Scope, Send
from perf.compat.nexios import MatchStatus  # Route.match's return type; not exported by Nexios

logger = logging.getLogger(__name__)

def clip(text: str, limit: int = 64) -> str:
    """``text`` cut to ``limit`` characters (with ``...``): what an error message may echo of the input.

    >>> clip("a" * 100, 8)
    'aaaaa...'
    """
    return text if len(text) <= limit else text[:limit - 3] + "..."


class ApiError(Exception):
    """An error the client should see: ``status``, ``message``, per-field ``errors``, extra ``headers``."""

    def __init__(self, status: int, message: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        """The JSON body: ``{"error": message, "status": ..., "errors": [...]}``."""
        data: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.errors is not None:
            data["errors"] = self.errors
        try:
            return orjson.dumps(data)
        except (TypeError, ValueError):  # orjson.JSONEncodeError: an int over 64 bits, a lone surrogate...
            pass
        try:
            return json.dumps(data, default=repr).encode()
        except (TypeError, ValueError):
            return orjson.dumps({"error": "the error could not be rendered", "status": self.status})


class ServiceUnavailable(ApiError):
    """503 with ``Retry-After``: PostgreSQL (or another dependency) is unreachable."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(503, message, headers={"Retry-After": str(retry_after)})


async def send_error(send: Send, error: ApiError) -> None:
    """Send ``error`` as a complete JSON response."""
    body = error.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), str(v).encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ErrorBoundary:
    """Pure ASGI: whatever goes wrong below, the client gets JSON and no traceback.

    ``metrics``: count the responses this boundary sends itself (the outermost one, whose
    errors no timing layer saw).
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        began = time.perf_counter() if self.metrics is not None else 0.0  # only the metrics read it

        def tracking_send(message: Message) -> Awaitable[None]:
            # A plain function handing back send's awaitable: no coroutine of its own a message.
            nonlocal started
            started = started or message["type"] == "http.response.start"
            return send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client (or the body limit, on its behalf) went away. Answer anyway, quietly:
            # the server drops it, and Nexios' bridges raise if a request gets no response.
            if not started:
                await self._answer(scope, send, ApiError(400, "client disconnected before the request body was read"),
                                   began)
        except Exception as exc:  # noqa: BLE001 - this is the last line of defence
            error = to_api_error(exc, scope)
            if error.status >= 500 and not isinstance(exc, ApiError):
                logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # too late to change the status; the server closes the connection
            await self._answer(scope, send, error, began)

    async def _answer(self, scope: Scope, send: Send, error: ApiError, began: float) -> None:
        if self.metrics is not None:
            self.metrics.record(scope["method"], scope.get(ROUTE_KEY, UNMATCHED), error.status, "bypass",
                                time.perf_counter() - began)
        try:
            await send_error(send, error)
        except Exception:  # noqa: BLE001 - the client is gone; nothing left to tell it
            logger.debug("could not send the %d answer: the connection is closed", error.status)


def to_api_error(exc: BaseException, scope: Scope) -> ApiError:
    """Map an exception to the ApiError the client sees."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFoundException):
        return ApiError(404, f"no route for {clip(str(scope.get('method')), 16)} {clip(str(scope.get('path')))}")
    if isinstance(exc, HTTPException):
        return ApiError(exc.status_code, str(exc.detail or "error"), headers=dict(exc.headers or {}))
    return ApiError(500, "internal server error")


class SafeRoute(Route):
    """A Nexios route that answers a wrong method with 405 and calls its handler directly.

    * The 405 fix: see the module docstring.
    * Nexios wraps every handler in ``request_response`` + ``get_route_handler``: per
      request it sets a context variable, resolves the handler's dependencies and
      parameters (none here), asks ``inspect`` whether the handler is a coroutine function
      and post-processes its result; ~9 µs of the ~25 µs the framework cost per request
      (``python -m perf.bench.api``). A route with no dependencies, no injected
      parameters, no route middleware and an ``async`` handler that returns the response
      manager (``response.resp(...)``/``.json(...)``) needs none of that: this class
      builds the same ``Request`` and a :class:`~perf.api.responses.RouteResponse` (the
      framework's manager without its reference cycle) and calls the handler. Any of those
      features on the route, or ``direct=False``, and it takes the framework's own path.
    * ``match`` does what ``Route.match`` does (the router asks every route in turn, so
      it runs several times a request, once per route listed before the one that
      matches) with a set lookup for the method instead of lower-casing every allowed
      method through a generator, and a string comparison instead of the regular
      expression for a path without parameters whose pattern is that path exactly.
    """

    def __init__(self, *args: Any, direct: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct_handler = direct and inspect.iscoroutinefunction(self.handler)
        exact = "^" + re.escape(self.raw_path) + "$"
        self.static_path: str | None = self.raw_path if self.pattern.pattern == exact else None

    def match(self, scope: Scope) -> tuple[MatchStatus, Any]:
        """``(FULL | PARTIAL | NONE, path params)`` for ``scope``, as ``Route.match`` answers."""
        if scope["type"] != "http":
            return MatchStatus.NONE, {}
        path: str = scope["path"]
        root_path = scope.get("root_path", "")
        if root_path and path.startswith(root_path):  # as nexios' get_route_path
            path = path[len(root_path):]
        if self.static_path is not None:
            if path != self.static_path:
                return MatchStatus.NONE, {}
            return (MatchStatus.FULL if scope["method"] in self.methods else MatchStatus.PARTIAL), {}
        found = self.pattern.match(path)
        if found is None:
            return MatchStatus.NONE, {}
        params = found.groupdict()
        for key, value in params.items():
            params[key] = self.route_info.convertor[key].convert(value)
        return (MatchStatus.FULL if scope["method"] in self.methods else MatchStatus.PARTIAL), params

    async def handle(self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
        set_route(scope, self.raw_path)  # the metrics' route label: the template, never the raw path
        if self.methods and scope["method"] not in self.methods:
            router = scope.get("app")
            allowed = set(self.methods)
            for route in getattr(router, "routes", ()):
                if route is not self and route.pattern.match(scope["path"]):
                    allowed |= set(getattr(route, "methods", ()) or ())
            allow = ", ".join(sorted(allowed))
            method, path = clip(scope["method"], 16), clip(scope["path"])
            raise ApiError(405, f"method {method} not allowed on {path}; allowed: {allow}",
                           headers={"Allow": allow})
        if not self.direct_handler or self.resolved_dependencies or self.resolved_params or self.middleware:
            await self.app(scope, receive, send)  # the framework's path: Context, injection, route middleware
            return
        request = Request(scope, receive, send)
        manager = RouteResponse(request)  # not stored in the request's state: no reference cycle
        params = scope.get("route_params")  # the router's RouteParam; its .data is the plain dict
        result = await self.handler(request, manager, **(params.data if params is not None else {}))
        if result is not manager:
            raise TypeError(f"the handler of {self.raw_path} returned {type(result).__name__}: "
                            "return the response manager (response.resp(...), response.json(...))")
        await manager.get_response()(scope, receive, send)
