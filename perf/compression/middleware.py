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
``Vary: Accept-Encoding``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perf.asgi import ASGIApp, Message, Receive, Scope, Send
from perf.compression.accept_encoding import choose_encoding
from perf.compression.codecs import DEFAULT_LEVELS, PREFERENCE, Codec, StreamCompressor, create_codec

Headers = list[tuple[bytes, bytes]]

#: A response carrying this header is sent uncompressed (the header itself is removed).
NO_COMPRESSION_HEADER = "x-no-compression"
_OPT_OUT = NO_COMPRESSION_HEADER.encode()

#: Media types worth compressing: prefixes, plus any ``+json`` / ``+xml`` suffix type.
DEFAULT_COMPRESSIBLE_TYPES: tuple[str, ...] = (
    "text/", "application/json", "application/x-ndjson", "application/javascript",
    "application/xml", "application/xhtml+xml", "image/svg+xml", "application/wasm",
)
_NEVER_COMPRESS = ("text/event-stream",)  # each event must reach the client when sent
_SKIP_STATUSES = frozenset({204, 206, 304})
_CACHE_SIZE = 256
_MISSING = object()


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
        self._negotiated: dict[bytes | None, Codec | None] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        codec = None
        if scope.get("method") != "HEAD" and not (self.exclude_paths and
                                                  scope.get("path", "").startswith(self.exclude_paths)):
            codec = self._negotiate(_header(scope.get("headers", ()), b"accept-encoding"))
        await _Responder(self, codec, send).run(scope, receive)

    def _negotiate(self, header: bytes | None) -> Codec | None:
        # Clients send a handful of distinct headers: parse each once (bounded cache).
        codec = self._negotiated.get(header, _MISSING)
        if codec is _MISSING:
            name = choose_encoding(header.decode("latin-1") if header is not None else None, self._names)
            codec = self.codecs[name] if name else None
            if len(self._negotiated) < _CACHE_SIZE:
                self._negotiated[header] = codec
        return codec  # type: ignore[return-value]

    def is_compressible(self, content_type: str) -> bool:
        """True when ``content_type`` (a ``Content-Type`` value) is worth compressing."""
        media = content_type.split(";", 1)[0].strip().lower()
        if not media or media.startswith(_NEVER_COMPRESS):
            return False
        return media.startswith(self.compressible_types) or media.endswith(("+json", "+xml"))


class _Responder:
    """The per-request state: the held-back start message, then the stream compressor."""

    def __init__(self, middleware: CompressionMiddleware, codec: Codec | None, send: Send) -> None:
        self.mw = middleware
        self.codec = codec
        self.send = send
        self.start: Message | None = None  # held back until the first body chunk
        self.stream: StreamCompressor | None = None
        self.passthrough = False

    async def run(self, scope: Scope, receive: Receive) -> None:
        await self.mw.app(scope, receive, self.on_send)

    async def on_send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            index = dict(headers)
            if _OPT_OUT in index:
                headers = [(k, v) for k, v in headers if k != _OPT_OUT]
            headers = _add_vary(headers, index.get(b"vary"))
            message = {**message, "headers": headers}
            if _OPT_OUT in index or self.codec is None or self._skip(message["status"], index):
                self.passthrough = True
                await self.send(message)
            else:
                self.start = message
        elif kind != "http.response.body" or self.passthrough:
            if self.start is not None:  # e.g. a pathsend/trailers extension: leave the body alone
                await self.send(self.start)
                self.start, self.passthrough = None, True
            await self.send(message)
        elif self.start is not None:
            await self._first_body(message)
        else:
            await self._next_body(message)

    def _skip(self, status: int, index: dict[bytes, bytes]) -> bool:
        if status < 200 or status in _SKIP_STATUSES or b"content-encoding" in index:
            return True
        content_type = index.get(b"content-type")
        if content_type is None or not self.mw.is_compressible(content_type.decode("latin-1")):
            return True
        length = index.get(b"content-length")
        return length is not None and length.isdigit() and int(length) < self.mw.minimum_size

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


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if bytes(key).lower() == name:
            return bytes(value)
    return None


def _set_header(headers: Headers, name: bytes, value: bytes) -> Headers:
    return [(k, v) for k, v in headers if k != name] + [(name, value)]


def _add_vary(headers: Headers, any_vary: bytes | None) -> Headers:
    if any_vary is None:
        return headers + [(b"vary", b"Accept-Encoding")]
    vary = [v for k, v in headers if k == b"vary"]
    tokens = {t.strip().lower() for v in vary for t in v.split(b",")}
    if b"accept-encoding" in tokens or b"*" in tokens:
        return headers
    merged = b", ".join([*vary, b"Accept-Encoding"])
    return _set_header(headers, b"vary", merged)


def _encoded(headers: Headers, codec: Codec) -> Headers:
    headers = _set_header(headers, b"content-encoding", codec.name.encode())
    etag = _header(headers, b"etag")
    if etag is not None and not etag.startswith(b"W/"):  # a different representation: weak ETag
        headers = _set_header(headers, b"etag", b"W/" + etag)
    return [(k, v) for k, v in headers if k != b"accept-ranges"]
