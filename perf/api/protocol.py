"""uvicorn's httptools protocol, bounded: what a request head may cost, and an honest close.

uvicorn (0.54) bounds only the idle time *between* requests (``timeout_keep_alive``), and
its httptools protocol has no bound on a head's size (its h11 protocol has one,
``h11_max_incomplete_event_size``, 16 KiB by default, answered with a 400). This subclass:

* **Head time**: arms a timer when a connection opens and when a request starts, and
  cancels it once the head (request line + headers) is complete; if it fires first the
  client gets ``408`` and the connection is closed (slowloris).
* **Head size**: a head over ``max_head`` bytes or :data:`MAX_HEADERS` lines gets ``431``
  and a close, checked as the bytes arrive, so an unfinished 40 MB header costs at most
  ``max_head`` plus one read (the parser buffers a header value until it ends).
* **Request line and Host**: a line without a version (HTTP/0.9) is refused as soon as
  it ends, instead of waiting out the head timer; a version other than 1.0/1.1, an HTTP/1.1
  request without exactly one ``Host`` (RFC 9112 §3.2) and a WebSocket upgrade (this API has
  no WebSocket endpoint; uvicorn runs with ``ws="none"``) get a JSON ``400``.
* **An early answer says it closes**: a response that starts before the request's body
  has fully arrived (a 401 on a write, a GET with a body) carries ``Connection: close``
  and the connection closes after it, so a keep-alive client is told instead of finding
  its next request on a dead socket; the body is never read on.

Every refusal is JSON with ``Connection: close``, like the app's own errors (a request the
parser rejects gets a JSON ``400`` too; uvicorn's own is text/plain), then a half-close
and up to :data:`LINGER` seconds of dropped input before the close, so the client reads
the answer rather than a connection reset. Stalled *bodies* are
the app's to bound (:class:`perf.api.limits.BodyLimitMiddleware` answers 408). granian has
the head timer built in (``HTTP1Settings(header_read_timeout=...)``) and bounds heads itself.

uvicorn takes the class as ``http="perf.api.protocol:BoundedHttpProtocol"`` (an import
string, so every worker process loads it); the limits come from the API settings the CLI
put in ``PERF_API_SETTINGS`` (``read_timeout``, ``max_head``), else the defaults here. It
relies on uvicorn's ``HttpToolsProtocol`` attributes and hooks (listed in :mod:`perf.compat.uvicorn`,
checked by ``tests/test_compat.py``); ``tests/test_api_heads.py`` runs it on a real server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from http import HTTPStatus

import httptools
import orjson

from perf.compat.uvicorn import HttpToolsBase

DEFAULT_HEAD_TIMEOUT = 20.0
DEFAULT_MAX_HEAD = 64 * 1024
#: Header lines a request may carry (gunicorn's ``limit_request_fields`` default).
MAX_HEADERS = 100
#: Seconds a refused connection stays half-closed, dropping input, so the answer is read (nginx: lingering_close).
LINGER = 2.0


@functools.cache
def limits() -> tuple[float, int]:
    """``(head timeout in seconds, max head bytes)`` from the API settings (``read_timeout``, ``max_head``)."""
    raw = os.environ.get("PERF_API_SETTINGS")
    data = json.loads(raw) if raw else {}
    return float(data.get("read_timeout", DEFAULT_HEAD_TIMEOUT)), int(data.get("max_head", DEFAULT_MAX_HEAD))


def head_timeout() -> float:
    """Seconds a client has to send a complete request head (``read_timeout`` of the API settings)."""
    return limits()[0]


def error_response(status: int, message: str) -> bytes:
    """A complete JSON error response that closes the connection: ``{"error": ..., "status": ...}``."""
    body = orjson.dumps({"error": message, "status": status})
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class BoundedHttpProtocol(HttpToolsBase):
    """``HttpToolsProtocol`` with bounded request heads and an honest close (module docstring)."""

    _head_timer: asyncio.TimerHandle | None = None
    _head_since: float | None = None  # loop time the head in progress began (None: no head in progress)
    _in_head = True  # between requests and inside a head: the bytes that arrive are head bytes
    _head_bytes = 0  # bytes of the head in progress seen so far (a lower bound: see data_received)
    _completed = 0  # requests whose body has fully arrived, on this connection
    _line_started = False  # the current request's target has begun to arrive (llhttp called on_url)
    _refusal: tuple[int, str] | None = None  # decided by a parser callback, sent after the feed
    _keep_alive_after_body = False  # the keep-alive a request gets back once its body has arrived
    _lingering = False  # refused: the answer is sent, input is dropped until the close

    # -- head timer --------------------------------------------------------------------
    # One timer per connection, not one per request: a head's start is a clock read, and the
    # timer, when it fires, checks the head in progress and sleeps again for what is left of
    # its time (or a whole timeout when none is in progress). Arming and cancelling a timer
    # for every request cost more than all the other checks of this class together.

    def _head_begins(self) -> None:
        if self._head_since is None:  # a first request's head is due from the connection's opening, not its first byte
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(head_timeout(), self._check_head_time)

    def _disarm(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _check_head_time(self) -> None:
        timeout = head_timeout()
        since = self._head_since
        left = timeout if since is None else since + timeout - self.loop.time()
        if left <= 0:
            self._head_timer = None
            self._refuse(408, "request head not received in time; send the request line and headers at once")
        else:
            self._head_timer = self.loop.call_later(left, self._check_head_time)

    # -- refusing ----------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close, unless a response is already being sent on this connection."""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's answer, if any, is dropped
                cycle.message_event.set()
            self.transport.write(error_response(status, message))
            self._linger()
        else:  # in the middle of a response (pipelining): let it finish, then close
            self.cycle.keep_alive = False
            self._keep_alive_after_body = False
            self.flow.pause_reading()

    def _linger(self) -> None:
        """Half-close after the answer, and read and drop what the client still sends for a moment.

        Closing a socket with unread input makes the kernel send a reset that can destroy the
        answer on its way (a client still pushing a 40 MB header would never see its 431).
        """
        self._lingering = True
        self._disarm()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self._close_now)

    def _close_now(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request the parser rejects (bad framing): 400 as JSON like every other error, then close."""
        self._refuse(400, f"malformed HTTP request: {msg}")

    # -- reading -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # answered and half-closed: drop the rest
        self.stop_keep_alive_timer()
        charge = len(data) if self._in_head else 0
        completed_before = self._completed
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # a WebSocket upgrade was refused in on_headers_complete; any other is served, then closed
        except httptools.HttpParserError as exc:
            if self._refusal is None:
                self._refusal = (400, f"malformed HTTP request: {exc}")
        if self._refusal is not None:
            self._refuse(*self._refusal)
            return
        if not self._in_head or self.transport.is_closing():
            return
        if self._completed != completed_before:
            return  # a new head began inside this chunk, at an offset the parser does not tell: count from the next
        # The head in progress began at or before this chunk's first byte: all of it is head.
        self._head_bytes += charge
        if self._head_bytes > limits()[1]:
            self._refuse(431, f"request head over {limits()[1]} bytes; send smaller headers")
        elif self._line_started and b"\n" in data and self.parser.get_http_version() == "0.0":
            # the request line ended without " HTTP/1.x": llhttp reads it as HTTP/0.9 and waits for headers
            self._refuse(400, "request line without an HTTP version (HTTP/0.9 is not served); send HTTP/1.1")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begins()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._line_started = True

    def on_headers_complete(self) -> None:
        self._head_since = None  # the head is complete: the timer finds none in progress
        self._in_head = False
        refusal = self._check_head()
        if refusal is not None:
            self._refusal = refusal
            return  # no request cycle: the app never sees it
        super().on_headers_complete()
        if self.parser.should_upgrade():  # not to WebSocket (refused above): served, then closed
            self.cycle.keep_alive = False
            return
        # Until the body has fully arrived, a response closes the connection (and says so).
        self._keep_alive_after_body = self.cycle.keep_alive
        self.cycle.keep_alive = False

    def _check_head(self) -> tuple[int, str] | None:
        """Why the head just parsed is refused, as ``(status, message)``, or None."""
        headers = self.headers
        size, hosts = len(self.url) + 32, 0
        for name, value in headers:  # one pass: the head's size and its Host lines
            size += len(name) + len(value) + 4
            if name == b"host":
                hosts += 1
        if len(headers) > MAX_HEADERS or size > limits()[1]:
            return 431, (f"request head over {limits()[1]} bytes or {MAX_HEADERS} header lines "
                         f"({len(headers)} lines); send fewer, smaller headers")
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            return 400, f"HTTP/{version} is not served over this connection; send HTTP/1.1"
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            return 400, f"an HTTP/1.1 request needs exactly one Host header, got {hosts}"
        if self.parser.should_upgrade() and any(
                name == b"upgrade" and b"websocket" in value.lower() for name, value in headers):
            return 400, "this API has no WebSocket endpoints; use plain HTTP requests"
        return None

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refusal is not None:
            return
        self._completed += 1
        self._in_head, self._head_bytes, self._line_started = True, 0, False
        cycle = self.cycle
        if cycle is not None and not cycle.response_started and self._keep_alive_after_body:
            cycle.keep_alive = True  # the whole body arrived before the answer: keep-alive is safe again
        self._keep_alive_after_body = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # Answered before its body arrived: the response said "connection: close" (keep_alive
        # False), and uvicorn closes; never read on, or a client dripping that body keeps it forever.
        unread = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            self.transport.close()

    # -- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_begins()  # the first request's head is due from the moment the connection opens

    def shutdown(self) -> None:
        self._keep_alive_after_body = False  # a graceful shutdown closes after the running response
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


#: The name this class had when it bounded only the head's time (kept for import strings in use).
HeadTimeoutProtocol = BoundedHttpProtocol
