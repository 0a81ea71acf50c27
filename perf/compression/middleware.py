"""A pure ASGI response-compression middleware (works under Nexios and any ASGI app).

Modelled on Starlette's ``GZipMiddleware``: it holds back ``http.response.start`` until
the first body chunk, so it can still change the headers once it knows whether the
body is complete (compress it in one go, set ``Content-Length``) or streamed (compress
chunk by chunk with a flush after each, drop ``Content-Length``, bounded memory).

Under Nexios wrap it around the router (a function middleware cannot see the body)::

    app = NexiosApp(config=MakeConfig({"debug": False}))
    app.wrap_asgi(CompressionMiddleware, minimum_size=1024)

Anywhere else: ``app = CompressionMiddleware(app)``.

It skips: non-HTTP scopes, ``HEAD``, statuses 1xx/204/206/304, responses that already
carry ``Content-Encoding``, ``text/event-stream``, content types not in
``compressible_types``, bodies under ``minimum_size``, paths under ``exclude_paths`` and
responses that opt out with the ``x-no-compression`` header (see
:func:`disable_compression`; the header is stripped). Every HTTP response gets
``Vary: Accept-Encoding``. ``Accept-Encoding`` is read only for a response that could be
compressed (so never for a small one that declares its ``Content-Length``), and negotiated
once per distinct value (:func:`negotiated`, a bounded LRU cache).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

from perf.asgi import ASGIApp, Message, Receive, Scope, Send
from perf.compression.accept_encoding import choose_encoding
from perf.compression.codecs import DEFAULT_LEVELS, PREFERENCE, Codec, StreamCompressor, create_codec

Headers = list[tuple[bytes, bytes]]

#: A response carrying this header is sent uncompressed (the header itself is removed).
NO_COMPRESSION_HEADER = "x-no-compression"
_OPT_OUT = NO_COMPRESSION_HEADER.encode()
_VARY = (b"vary", b"Accept-Encoding")

#: Media types worth compressing: prefixes, plus any ``+json`` / ``+xml`` suffix type.
DEFAULT_COMPRESSIBLE_TYPES: tuple[str, ...] = (
    "text/", "application/json", "application/x-ndjson", "application/javascript",
    "application/xml", "application/xhtml+xml", "image/svg+xml", "application/wasm",
)
_NEVER_COMPRESS = ("text/event-stream",)  # each event must reach the client when sent
_SKIP_STATUSES = frozenset({204, 206, 304})
#: Distinct ``Accept-Encoding`` values whose decision is kept: clients send a handful (each browser
#: family one); a client sending a new one a request only evicts the least recent.
NEGOTIATION_CACHE_SIZE = 256


def disable_compression(response: Any) -> Any:
    """Mark ``response`` (Nexios or Starlette style) so the middleware leaves it as is.

    Use it on routes that reflect user input next to a secret (a CSRF token, a session
    value): compressed size then leaks the secret byte by byte (BREACH). In Nexios call
    it once the body is set: ``return disable_compression(response.json(data))``.
    """
    if hasattr(response, "set_header"):
        response.set_header(NO_COMPRESSION_HEADER, "1")
    else:
        response.headers[NO_COMPRESSION_HEADER] = "1"
    return response


class CompressionMiddleware:
    """Compress HTTP responses with the best coding the client accepts (see module doc).

    ``encodings`` lists the codings to offer, best first (default zstd, br, gzip,
    deflate); ``levels`` overrides the measured default level per coding.
    """

    def __init__(self, app: ASGIApp, *, minimum_size: int = 1024,
                 encodings: Sequence[str] = PREFERENCE, levels: Mapping[str, int] | None = None,
                 compressible_types: Iterable[str] = DEFAULT_COMPRESSIBLE_TYPES,
                 exclude_paths: Iterable[str] = ()) -> None:
        if not isinstance(minimum_size, int) or minimum_size < 0:
            raise ValueError(f"minimum_size={minimum_size!r} must be an int >= 0 (bytes; 1024 is a good start)")
        if isinstance(encodings, str) or not encodings:
            raise ValueError(f"encodings={encodings!r} must be a non-empty sequence such as ('br', 'gzip')")
        levels = dict(levels or {})
        unknown = set(levels) - set(encodings)
        if unknown:
            raise ValueError(f"levels={levels!r} names codings not in encodings={tuple(encodings)!r}: "
                             f"remove {sorted(unknown)} or add them to encodings")
        self.app = app
        self.minimum_size = minimum_size
        self.codecs: dict[str, Codec] = {
            name: create_codec(name, levels.get(name, DEFAULT_LEVELS.get(name))) for name in encodings}
        self.compressible_types = tuple(t.lower() for t in compressible_types)
        self.exclude_paths = tuple(exclude_paths)
        self._names = tuple(self.codecs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        eligible = scope.get("method") != "HEAD" and not (self.exclude_paths and
                                                          scope.get("path", "").startswith(self.exclude_paths))
        await self.app(scope, receive, _Responder(self, scope if eligible else None, send).on_send)

    def negotiate(self, header: bytes | None) -> Codec | None:
        """The codec to compress with for this ``Accept-Encoding`` value (raw bytes), or None for identity.

        Decided once per distinct value (:func:`negotiated`, a bounded LRU cache), as
        :func:`~perf.compression.accept_encoding.choose_encoding` decides it.
        """
        name = negotiated(header, self._names)
        return self.codecs[name] if name is not None else None

    def is_compressible(self, content_type: str) -> bool:
        """True when ``content_type`` (a ``Content-Type`` value) is worth compressing."""
        media = content_type.split(";", 1)[0].strip().lower()
        if not media or media.startswith(_NEVER_COMPRESS):
            return False
        return media.startswith(self.compressible_types) or media.endswith(("+json", "+xml"))


class _Responder:
    """The per-request state: the held-back start message, then the stream compressor.

    ``scope`` is None when the request may not be compressed (``HEAD``, an excluded path).
    The ``Accept-Encoding`` header is read and negotiated only for a response that could be
    compressed: never for one that opts out, is of a skipped status or type, or declares a
    ``Content-Length`` under the minimum size (a cached product read, say).
    """

    __slots__ = ("mw", "scope", "send", "codec", "start", "stream", "passthrough")  # one a request: cheaper to make

    def __init__(self, middleware: CompressionMiddleware, scope: Scope | None, send: Send) -> None:
        self.mw = middleware
        self.scope = scope
        self.send = send
        self.codec: Codec | None = None
        self.start: Message | None = None  # held back until the first body chunk
        self.stream: StreamCompressor | None = None
        self.passthrough = False

    def on_send(self, message: Message) -> Awaitable[None]:
        # A plain function handing back an awaitable: a passed-through message costs no coroutine of its own.
        if self.passthrough:
            return self.send(message)
        kind = message["type"]
        if kind == "http.response.start":
            return self._on_start(message)
        if kind != "http.response.body":
            return self._other(message)
        if self.start is not None:
            return self._first_body(message)
        return self._next_body(message)

    def _on_start(self, message: Message) -> Awaitable[None]:
        headers, index = _normalised(message.get("headers", ()))
        opt_out = _OPT_OUT in index
        if opt_out:
            headers = [(k, v) for k, v in headers if k != _OPT_OUT]
        vary = index.get(b"vary")
        message = {**message, "headers": [*headers, _VARY] if vary is None else _add_vary(headers, vary)}
        if not (opt_out or self.scope is None or self._skip(message["status"], index)):
            self.codec = self.mw.negotiate(_header(self.scope.get("headers", ()), b"accept-encoding"))
            if self.codec is not None:
                self.start = message
                return _done()
        self.passthrough = True
        return self.send(message)

    async def _other(self, message: Message) -> None:
        if self.start is not None:  # e.g. a pathsend/trailers extension: leave the body alone
            await self.send(self.start)
            self.start, self.passthrough = None, True
        await self.send(message)

    def _skip(self, status: int, index: dict[bytes, bytes]) -> bool:
        if status < 200 or status in _SKIP_STATUSES or b"content-encoding" in index:
            return True
        length = index.get(b"content-length")  # before the type: the cheapest way out for a small body
        if length is not None and length.isdigit() and int(length) < self.mw.minimum_size:
            return True
        content_type = index.get(b"content-type")
        return content_type is None or not self.mw.is_compressible(content_type.decode("latin-1"))

    async def _first_body(self, message: Message) -> None:
        assert self.start is not None and self.codec is not None
        start, self.start = self.start, None
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        headers = start["headers"]
        if not more:  # the whole body is here: compress it in one call, if it is worth it
            compressed = self.codec.compress(body) if len(body) >= self.mw.minimum_size else body
            if len(compressed) >= len(body):
                await self.send(start)
                await self.send(message)
                return
            headers = _set_header(headers, b"content-length", str(len(compressed)).encode())
            await self.send({**start, "headers": _encoded(headers, self.codec)})
            await self.send({**message, "body": compressed})
            return
        self.stream = self.codec.stream()
        headers = [(k, v) for k, v in headers if k != b"content-length"]
        await self.send({**start, "headers": _encoded(headers, self.codec)})
        await self._next_body(message)

    async def _next_body(self, message: Message) -> None:
        assert self.stream is not None
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        data = self.stream.compress(body) if body else b""
        if not more:
            data += self.stream.finish()
        elif not data:
            return  # nothing to say yet; the next chunk or the end will carry it
        await self.send({"type": "http.response.body", "body": data, "more_body": more})


@functools.lru_cache(maxsize=NEGOTIATION_CACHE_SIZE)
def negotiated(header: bytes | None, available: tuple[str, ...]) -> str | None:
    """:func:`~perf.compression.accept_encoding.choose_encoding` for a raw ``Accept-Encoding`` value, cached.

    The decision depends on the header and the server's codings alone, so it is made once
    per distinct pair (least recently used evicted past :data:`NEGOTIATION_CACHE_SIZE`).

    >>> negotiated(b"gzip;q=0.5, br", ("zstd", "br", "gzip"))
    'br'
    """
    return choose_encoding(header.decode("latin-1") if header is not None else None, available)


def _normalised(raw: Iterable[tuple[bytes, bytes]]) -> tuple[Sequence[tuple[bytes, bytes]], dict[bytes, bytes]]:
    """``raw`` as lower-case byte-string pairs, and an index by name (the last value wins)."""
    if type(raw) is list or type(raw) is tuple:
        # ASGI's own form (lower-case byte-string names and values: what every app here sends) is taken as it
        # is; lower-casing and re-typing a copy of every pair cost ~2 µs a response on the benchmark's machine.
        index = {}
        for name, value in raw:
            if type(name) is not bytes or type(value) is not bytes or not name.islower():
                break
            index[name] = value
        else:
            return raw, index
    headers = [(bytes(k).lower(), bytes(v)) for k, v in raw]
    return headers, dict(headers)


async def _done() -> None:
    """An awaitable with nothing to do: the start message is held back."""


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if bytes(key).lower() == name:
            return bytes(value)
    return None


def _set_header(headers: Sequence[tuple[bytes, bytes]], name: bytes, value: bytes) -> Headers:
    return [(k, v) for k, v in headers if k != name] + [(name, value)]


def _add_vary(headers: Sequence[tuple[bytes, bytes]], any_vary: bytes | None) -> Headers:
    if any_vary is None:
        return [*headers, _VARY]
    vary = [v for k, v in headers if k == b"vary"]
    tokens = {t.strip().lower() for v in vary for t in v.split(b",")}
    if b"accept-encoding" in tokens or b"*" in tokens:
        return list(headers)
    merged = b", ".join([*vary, b"Accept-Encoding"])
    return _set_header(headers, b"vary", merged)


def _encoded(headers: Headers, codec: Codec) -> Headers:
    headers = _set_header(headers, b"content-encoding", codec.name.encode())
    etag = _header(headers, b"etag")
    if etag is not None and not etag.startswith(b"W/"):  # a different representation: weak ETag
        headers = _set_header(headers, b"etag", b"W/" + etag)
    return [(k, v) for k, v in headers if k != b"accept-ranges"]
