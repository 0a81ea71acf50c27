"""Nexios' private names, for :mod:`perf.api` (checked against nexios 3.12.3, the pin).

* :data:`MatchStatus`: the type ``Route.match`` returns (``FULL``/``PARTIAL``/``NONE``); a
  route class that overrides ``match`` must answer it, and Nexios defines it only in
  ``nexios.routing._utils``.
* :class:`PreparedResponse`: a ``BaseResponse`` whose headers are built once from its body.
  ``BaseResponse.__init__`` re-encodes the body, lower-cases and encodes every header and
  rewrites the list for ``content-length`` (~4 µs a request, ``python -m perf.bench.api``);
  the body lives in the private ``_body`` its ``__call__`` sends.
* :class:`DetachedResponse`: Nexios' response manager without ``Response.__new__``, which
  stores the manager in (and so ties it to) ``request.state``: a reference cycle a request that
  only full garbage collections free. Its ``__init__`` sets the three private attributes
  ``Response.__init__`` sets (``_response``, ``_request``, ``_initialized``).
"""

from __future__ import annotations

from nexios.http import Request, Response
from nexios.http.response import BaseResponse
from nexios.routing._utils import MatchStatus

__all__ = ["DetachedResponse", "MatchStatus", "PreparedResponse"]

#: The nexios version these names were checked against (``requirements.txt``).
CHECKED = "3.12.3"


class PreparedResponse(BaseResponse):
    """``PreparedResponse(body, status=200, headers={...})``: a ``BaseResponse`` whose headers are built
    once from what the body already is: ``content-type`` (the class's ``media_type``), ``content-length``,
    then ``headers`` (names sent lower-cased, as every HTTP/1.1 server does anyway).

    A subclass sets ``media_type``; it adds no call of its own (this ``__init__`` is the whole cost).
    """

    media_type = "application/octet-stream"
    content_type_header = (b"content-type", b"application/octet-stream")

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.content_type_header = (b"content-type", cls.media_type.encode("latin-1"))

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        # The attributes BaseResponse.__init__ sets, without its per-header rework.
        self.charset = "utf-8"
        self.status_code = status
        self.content_type = self.media_type
        self._body = body
        self.raw_headers = [self.content_type_header, (b"content-length", b"%d" % len(body))]
        if headers:
            self.raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class DetachedResponse(Response):
    """Nexios' response manager (same API), owned by whoever made it, not stored in ``request.state``."""

    def __new__(cls, request: Request) -> DetachedResponse:
        # Response.__new__ looks the manager up in (and stores it into) request.state.
        return object.__new__(cls)

    def __init__(self, request: Request) -> None:
        self._response = None
        self._request = request
        self._initialized = True
