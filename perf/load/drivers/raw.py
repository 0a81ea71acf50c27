"""The built-in driver: HTTP/1.1 keep-alive on an asyncio Protocol, responses parsed by httptools.

A load generator slower than the server measures itself: httpx spends most of a
request in its own Python layers, so this driver writes the request bytes directly
and lets httptools (C) parse the answer. Plain HTTP only; use the httpx driver for
HTTPS or HTTP/2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httptools

from perf.load.drivers.base import Connection, Driver, RequestFailed, Response

#: Encoded requests kept per driver (method, target); cleared when full.
_MAX_HEADS = 4096


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        #: Called once with the response or the failure instead of ``waiter`` (see RawConnection.send).
        self.callback: Callable[[Response | RequestFailed], None] | None = None
        self.closed = False
        self._status = 0
        self._timing: str | None = None
        self._cache: str | None = None
        self._nbytes = 0
        self._keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RequestFailed("protocol", str(exc)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RequestFailed("reset", str(exc or "server closed the connection")))

    def _fail(self, error: RequestFailed) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        callback = self.callback
        if callback is not None:
            self.callback = None
            callback(error)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._timing = self._cache = None
        self._nbytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"server-timing":
            text = value.decode("latin-1")
            self._timing = text if self._timing is None else f"{self._timing}, {text}"
        elif lname == b"x-cache":
            self._cache = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        self._keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._nbytes += len(body)

    def on_message_complete(self) -> None:
        response = Response(self._status, self._timing, self._nbytes, self._cache)
        if not self._keep_alive and self.transport is not None:
            self.closed = True  # before the callback, which may send the next request at once
            self.transport.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)
        callback = self.callback
        if callback is not None:
            self.callback = None
            callback(response)


class RawConnection(Connection):
    """One keep-alive connection; reconnects after the server closes it."""

    def __init__(self, driver: RawDriver) -> None:
        self._driver = driver
        self._protocol: _Protocol | None = None

    async def _ensure(self) -> _Protocol:
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            try:
                _, protocol = await loop.create_connection(_Protocol, self._driver.host, self._driver.port)
            except OSError as exc:
                raise RequestFailed("connect", str(exc)) from exc
            self._protocol = protocol
        return self._protocol

    async def request(self, method: str, target: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._ensure()
        assert protocol.transport is not None
        waiter: asyncio.Future[Response] = protocol.loop.create_future()
        protocol.waiter = waiter
        protocol.transport.write(self._driver.encode(method, target, body, headers))
        try:
            return await waiter
        except asyncio.CancelledError:
            # A response may still arrive for this request: the connection is unusable.
            protocol.transport.close()
            self._protocol = None
            raise
        finally:
            protocol.waiter = None

    @property
    def ready(self) -> bool:
        """True when :meth:`send` can write at once (else ``await open()`` first)."""
        return self._protocol is not None and not self._protocol.closed

    async def open(self) -> None:
        """(Re)connect if needed; raises :class:`RequestFailed` ``connect`` when the server refuses."""
        await self._ensure()

    def send(self, method: str, target: str, body: bytes | None, headers: dict[str, str] | None,
             callback: Callable[[Response | RequestFailed], None]) -> None:
        """Write one request now; ``callback`` gets its :class:`Response` or :class:`RequestFailed` later.

        The callback form of :meth:`request` for a generator's hot loop: no future, no task
        wake-up per request. Only when :attr:`ready`; :meth:`abort` gives a request up.
        """
        protocol = self._protocol
        if protocol is None or protocol.closed or protocol.transport is None:
            raise RuntimeError("send() on a connection that is not ready: await open() first")
        protocol.callback = callback
        protocol.transport.write(self._driver.encode(method, target, body, headers))

    def abort(self) -> None:
        """Give up the request in flight: its answer could still arrive, so the connection is closed."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.callback = None
            if protocol.transport is not None:
                protocol.transport.close()

    async def close(self) -> None:
        if self._protocol is not None:
            self._protocol.callback = None
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None


class RawDriver(Driver):
    """The fast built-in driver (see the module docstring)."""

    name = "builtin"

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url)
        if self.scheme != "http":
            raise ValueError(f"the built-in driver speaks plain HTTP only, got {base_url!r}: "
                             "use driver='httpx' for HTTPS")
        self.host_header = f"{self.host}:{self.port}"
        self._heads: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}

    def encode(self, method: str, target: str, body: bytes | None = None,
               headers: dict[str, str] | None = None) -> bytes:
        """The request's bytes; a bodiless request is encoded once per target and headers."""
        if body is None:
            key = (method, target, tuple(headers.items()) if headers else ())
            data = self._heads.get(key)
            if data is None:
                if len(self._heads) >= _MAX_HEADS:  # generated targets (ids in paths) would grow it forever
                    self._heads.clear()
                data = self._heads[key] = self._encode(method, target, None, headers)
            return data
        return self._encode(method, target, body, headers)

    def _encode(self, method: str, target: str, body: bytes | None, headers: dict[str, str] | None) -> bytes:
        head = [f"{method} {self.base_path}{target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        if headers:
            head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        if body is not None:
            head.append(f"Content-Length: {len(body)}\r\n")
        head.append("\r\n")
        return "".join(head).encode("latin-1") + (body or b"")

    async def connect(self) -> RawConnection:
        return RawConnection(self)
