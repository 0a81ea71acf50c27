"""uvicorn's httptools protocol with a request-head read timeout (slowloris protection).

uvicorn bounds only the idle time *between* requests (``timeout_keep_alive``); a client
that opens a connection and sends a request head one byte at a time holds it forever.
This subclass arms a timer when a connection opens and when a new request starts, and
cancels it once the head (request line + headers) is complete; if it fires first, the
client gets ``408`` with a JSON body and the connection is closed. A request the parser
rejects gets a JSON ``400`` too (uvicorn's own is text/plain), and a connection whose
request was answered before its body arrived is closed instead of read on. Stalled *bodies* are
the app's to bound (:class:`perf.api.guard.RequestGuard` answers 408 when ``receive``
waits longer than ``read_timeout``). granian has the same bound built in
(``HTTP1Settings(header_read_timeout=...)``).

uvicorn takes the class as ``http="perf.api.protocol:HeadTimeoutProtocol"`` (an import
string, so every worker process loads it); the timeout comes from the API settings the
CLI put in ``PERF_API_SETTINGS``, else :data:`DEFAULT_HEAD_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEAD_TIMEOUT = 20.0
_BODY = b'{"error":"request head not received in time; send the request line and headers at once","status":408}'
_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
             b"content-length: " + str(len(_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _BODY)


@functools.cache
def head_timeout() -> float:
    """Seconds a client has to send a complete request head (``read_timeout`` of the API settings)."""
    raw = os.environ.get("PERF_API_SETTINGS")
    if raw:
        return float(json.loads(raw).get("read_timeout", DEFAULT_HEAD_TIMEOUT))
    return DEFAULT_HEAD_TIMEOUT


class HeadTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request head takes over :func:`head_timeout`."""

    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(head_timeout(), self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_RESPONSE)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request the parser rejects (bad framing): 400 as JSON like every other error, then close."""
        body = orjson.dumps({"error": f"malformed HTTP request: {msg}", "status": 400})
        self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: "
                             + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # Answered before its body arrived (a GET with a Content-Length it never sends): close
        # rather than keep reading, or a client dripping that body keeps the connection forever.
        unread = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
