"""Nexios responses at the cost of the bytes they send: :class:`JsonBytes` and :class:`RouteResponse`.

Both are subclasses of Nexios' classes, used through its public API
(``response.make_response(...)``, a handler's ``response`` argument), so handlers keep
the framework's ``(request, response)`` contract; the private attributes they set live in
:mod:`perf.compat.nexios`.

* :class:`JsonBytes` is a ``BaseResponse`` whose headers are built once from what the
  body already is: ``BaseResponse.__init__`` re-encodes the body, lower-cases and
  encodes each header and rewrites the header list for ``content-length``
  (~4 µs a request here, ``python -m perf.bench.api``).
* :class:`RouteResponse` is the response manager :class:`~perf.api.errors.SafeRoute`
  hands a handler it calls directly. Nexios' ``Response(request)`` stores itself in the
  request's state and keeps the request: a reference cycle per request that only the
  cyclic garbage collector frees, in full collections that stall a server under load.
  This one is owned by the route call alone, so it is freed by reference counting
  when the request ends. Nexios' own path (dependencies, route middleware, exception
  handlers that look the manager up in the state) keeps ``Response``.
"""

from __future__ import annotations

from perf.compat.nexios import DetachedResponse, PreparedResponse

__all__ = ["JsonBytes", "RouteResponse"]


class JsonBytes(PreparedResponse):
    """``JsonBytes(body, status=200, headers={...})``: an encoded JSON body and its headers, nothing re-done.

    ``headers`` are extra headers (``Location``, ``Retry-After``): their names are sent
    lower-cased, as every HTTP/1.1 server does anyway.
    """

    media_type = "application/json"


class RouteResponse(DetachedResponse):
    """A Nexios response manager owned by one route call, not stored in the request's state."""
