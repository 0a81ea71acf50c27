"""CompressionMiddleware on tiny inline ASGI apps: negotiation, every skip rule, streaming, Vary."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterable
from typing import Any

import pytest

from perf.compression.accept_encoding import choose_encoding
from perf.compression.codecs import DEFAULT_LEVELS, PREFERENCE, decompress
from perf.compression.middleware import (
    NEGOTIATION_CACHE_SIZE,
    NO_COMPRESSION_HEADER,
    CompressionMiddleware,
    disable_compression,
    negotiated,
)
from perf.compression.payloads import product_list_json

BODY = product_list_json(20_000)


def make_app(body: bytes = BODY, *, status: int = 200, content_type: str | None = "application/json",
             headers: Iterable[tuple[str, str]] = (), chunks: int = 1, content_length: bool = True):
    """A raw ASGI app sending ``body`` in ``chunks`` pieces with the given headers."""
    async def app(scope: dict, receive: Any, send: Any) -> None:
        raw = [(k.encode(), v.encode()) for k, v in headers]
        if content_type is not None:
            raw.append((b"content-type", content_type.encode()))
        if content_length:
            raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        step = max(1, -(-len(body) // chunks))
        pieces = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
        for i, piece in enumerate(pieces):
            await send({"type": "http.response.body", "body": piece, "more_body": i < len(pieces) - 1})
    return app


async def call(app: Any, *, accept: str | None = "gzip, br, zstd", method: str = "GET",
               path: str = "/") -> tuple[int, dict[bytes, bytes], list[dict]]:
    """Run one request through ``app``; return status, headers (last wins) and body messages."""
    headers = [] if accept is None else [(b"accept-encoding", accept.encode())]
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, bodies = sent[0], sent[1:]
    assert start["type"] == "http.response.start"
    return start["status"], {k: v for k, v in start["headers"]}, bodies


def body_of(bodies: list[dict]) -> bytes:
    return b"".join(m["body"] for m in bodies)


@pytest.mark.parametrize("coding", sorted(DEFAULT_LEVELS))
async def test_compresses_with_the_negotiated_coding(coding: str) -> None:
    status, headers, bodies = await call(CompressionMiddleware(make_app()), accept=coding)
    assert status == 200
    assert headers[b"content-encoding"] == coding.encode()
    assert headers[b"vary"] == b"Accept-Encoding"
    assert int(headers[b"content-length"]) == len(body_of(bodies)) < len(BODY) / 2
    assert decompress(coding, body_of(bodies)) == BODY


async def test_server_preference_and_levels_are_configurable() -> None:
    app = CompressionMiddleware(make_app(), encodings=("gzip", "br"), levels={"gzip": 1})
    _, headers, bodies = await call(app, accept="br, gzip, zstd")
    assert headers[b"content-encoding"] == b"gzip"
    assert app.codecs["gzip"].level == 1
    assert decompress("gzip", body_of(bodies)) == BODY


def plain(headers: dict[bytes, bytes], bodies: list[dict], body: bytes = BODY) -> bool:
    return b"content-encoding" not in headers and body_of(bodies) == body


@pytest.mark.parametrize(("case", "app_kwargs", "call_kwargs"), [
    ("client accepts nothing we have", {}, {"accept": "compress"}),
    ("no Accept-Encoding", {}, {"accept": None}),
    ("malformed Accept-Encoding", {}, {"accept": "gzip;q=7"}),
    ("HEAD", {}, {"method": "HEAD"}),
    ("not compressible", {"content_type": "image/png"}, {}),
    ("no content type", {"content_type": None}, {}),
    ("server-sent events", {"content_type": "text/event-stream", "chunks": 4, "content_length": False}, {}),
    ("already encoded", {"headers": [("content-encoding", "br")]}, {}),
    ("opted out", {"headers": [(NO_COMPRESSION_HEADER, "1")]}, {}),
    ("excluded path", {}, {"path": "/account/settings"}),
    ("partial content", {"status": 206}, {}),
])
async def test_skip_rules_leave_the_body_alone(case: str, app_kwargs: dict, call_kwargs: dict) -> None:
    mw = CompressionMiddleware(make_app(**app_kwargs), exclude_paths=("/account",))
    status, headers, bodies = await call(mw, **call_kwargs)
    assert body_of(bodies) == BODY, case
    assert headers.get(b"content-encoding") == (b"br" if case == "already encoded" else None), case
    assert headers[b"vary"] == b"Accept-Encoding", case
    assert NO_COMPRESSION_HEADER.encode() not in headers


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_statuses_are_skipped(status: int) -> None:
    _, headers, bodies = await call(CompressionMiddleware(make_app(b"", status=status, content_length=False)))
    assert plain(headers, bodies, b"")
    assert headers[b"vary"] == b"Accept-Encoding"


async def test_small_bodies_are_sent_as_is_with_or_without_content_length() -> None:
    small = BODY[:999]
    for content_length in (True, False):
        mw = CompressionMiddleware(make_app(small, content_length=content_length), minimum_size=1000)
        _, headers, bodies = await call(mw)
        assert plain(headers, bodies, small)
    _, headers, _ = await call(CompressionMiddleware(make_app(BODY[:1000]), minimum_size=1000))
    assert headers[b"content-encoding"] == b"zstd"


async def test_streamed_body_with_a_small_content_length_is_not_compressed() -> None:
    mw = CompressionMiddleware(make_app(BODY[:600], chunks=3), minimum_size=1000)
    _, headers, bodies = await call(mw)
    assert plain(headers, bodies, BODY[:600])
    assert len(bodies) == 3


async def test_incompressible_bodies_are_not_made_bigger() -> None:
    noise = os.urandom(50_000)
    _, headers, bodies = await call(CompressionMiddleware(make_app(noise)))
    assert plain(headers, bodies, noise)
    assert int(headers[b"content-length"]) == len(noise)


async def test_vary_is_merged_not_duplicated() -> None:
    _, headers, _ = await call(CompressionMiddleware(make_app(headers=[("vary", "Cookie")])))
    assert headers[b"vary"] == b"Cookie, Accept-Encoding"
    _, headers, _ = await call(CompressionMiddleware(make_app(headers=[("Vary", "accept-encoding")])))
    assert headers[b"vary"] == b"accept-encoding"


async def test_strong_etag_becomes_weak_and_ranges_are_dropped() -> None:
    app = make_app(headers=[("etag", '"v1"'), ("accept-ranges", "bytes")])
    _, headers, _ = await call(CompressionMiddleware(app))
    assert headers[b"etag"] == b'W/"v1"'
    assert b"accept-ranges" not in headers


@pytest.mark.parametrize("coding", sorted(DEFAULT_LEVELS))
async def test_streamed_body_round_trips_chunk_by_chunk(coding: str) -> None:
    _, headers, bodies = await call(CompressionMiddleware(make_app(BODY, chunks=8, content_length=True)),
                                    accept=coding)
    assert headers[b"content-encoding"] == coding.encode()
    assert b"content-length" not in headers
    assert len(bodies) == 8, "one compressed message per chunk: nothing is buffered"
    assert [m["more_body"] for m in bodies] == [True] * 7 + [False]
    assert decompress(coding, body_of(bodies)) == BODY


@pytest.mark.parametrize("coding", sorted(DEFAULT_LEVELS))
async def test_streaming_memory_stays_bounded(coding: str) -> None:
    chunk, count = 64 * 1024, 128  # 8 MB streamed
    sent_sizes: list[int] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        line = BODY[:chunk]
        for i in range(count):
            await send({"type": "http.response.body", "body": line, "more_body": i < count - 1})

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            sent_sizes.append(len(message["body"]))

    async def receive() -> dict:
        return {"type": "http.request"}

    mw = CompressionMiddleware(app, encodings=(coding,))
    tracemalloc.start()
    try:
        await mw({"type": "http", "method": "GET", "path": "/", "headers": [(b"accept-encoding", coding.encode())]},
                 receive, send)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sent_sizes) == count
    assert max(sent_sizes) < chunk
    assert peak < 1_000_000, f"peak {peak} bytes for an 8 MB stream: the body is being buffered"


async def test_non_http_scopes_pass_through() -> None:
    seen = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await send({"type": "websocket.accept"})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await CompressionMiddleware(app)({"type": "websocket", "path": "/"}, None, send)
    assert seen == ["websocket"] and sent == [{"type": "websocket.accept"}]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"minimum_size": -1}, "minimum_size=-1"),
    ({"encodings": "gzip"}, "encodings='gzip' must be a non-empty sequence"),
    ({"encodings": ()}, "encodings=()"),
    ({"encodings": ("gzip", "lz4")}, "codec name='lz4' is unknown"),
    ({"levels": {"br": 4}, "encodings": ("gzip",)}, r"remove \['br'\]"),
    ({"levels": {"gzip": 10}}, "gzip level=10 is out of range"),
])
def test_bad_arguments_are_explained(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CompressionMiddleware(make_app(), **kwargs)


def test_disable_compression_marks_nexios_and_starlette_style_responses() -> None:
    class NexiosStyle:
        def __init__(self) -> None:
            self.set: dict[str, str] = {}

        def set_header(self, key: str, value: str) -> None:
            self.set[key] = value

    class StarletteStyle:
        def __init__(self) -> None:
            self.headers: dict[str, str] = {}

    nexios_like, starlette_like = NexiosStyle(), StarletteStyle()
    assert disable_compression(nexios_like) is nexios_like
    assert nexios_like.set == {NO_COMPRESSION_HEADER: "1"}
    disable_compression(starlette_like)
    assert starlette_like.headers == {NO_COMPRESSION_HEADER: "1"}


async def test_negotiation_cache_is_bounded() -> None:
    mw = CompressionMiddleware(make_app(BODY[:2000]))
    negotiated.cache_clear()
    for i in range(1, 400):
        await call(mw, accept=f"gzip;q=0.{i:03d}")
    assert negotiated.cache_info().currsize == NEGOTIATION_CACHE_SIZE == 256
    _, headers, _ = await call(mw, accept="gzip;q=0.999")
    assert headers[b"content-encoding"] == b"gzip"


@pytest.mark.parametrize("header", [
    None, "", "gzip", "GZIP", "x-gzip", "br;q=0.5, gzip;q=0.8", "gzip;q=0.8, br;q=0.8", "zstd;q=0",
    "identity;q=0", "identity;q=0, gzip;q=0", "identity;q=0, *;q=0", "*", "*;q=0", "*;q=0.5, gzip;q=0",
    "identity, gzip;q=0.5", "identity;q=0.9, br;q=0.9", " gzip ; q=1.000 , ,br;q=0.001", "gzip;q=1.0001",
    "gzip;level=1", "br;q=0.5;q=0.6", "deflate, *;q=0.1", "compress, lz4", "gzip, br, zstd, deflate",
])
@pytest.mark.parametrize("encodings", [PREFERENCE, ("gzip",), ("gzip", "br")])
async def test_cached_negotiation_decides_as_choose_encoding(header: str | None, encodings: tuple[str, ...]) -> None:
    """Cached or not, asked once or twice, the decision is choose_encoding's for every header form."""
    mw = CompressionMiddleware(make_app(BODY[:2000]), encodings=encodings)
    expected = choose_encoding(header, encodings)
    raw = None if header is None else header.encode("latin-1")
    for _ in range(2):  # the first decides, the second comes from the cache
        codec = mw.negotiate(raw)
        assert (codec.name if codec is not None else None) == expected
        _, headers, bodies = await call(mw, accept=header)
        assert headers.get(b"content-encoding") == (expected.encode() if expected else None)
        assert decompress(expected, body_of(bodies)) == BODY[:2000] if expected else body_of(bodies) == BODY[:2000]


async def test_a_body_under_the_minimum_size_is_never_negotiated() -> None:
    """A declared Content-Length under minimum_size is passed through before Accept-Encoding is even read."""
    negotiated.cache_clear()
    for content_length in (True, False):
        status, headers, bodies = await call(CompressionMiddleware(make_app(BODY[:500], content_length=content_length)),
                                             accept="gzip;q=0.123")
        assert status == 200 and plain(headers, bodies, BODY[:500]) and headers[b"vary"] == b"Accept-Encoding"
    # with a Content-Length the header was never negotiated; without one it must be (the body is not known yet)
    assert negotiated.cache_info().misses == 1


@pytest.mark.parametrize("raw", [
    [(b"Content-Type", b"application/json"), (b"content-length", b"500")],       # a name not lower-case
    [(b"content-type", bytearray(b"application/json")), (b"content-length", b"500")],  # a value not bytes
    ((b"content-type", b"application/json"), (b"content-length", b"500")),      # a tuple
    iter([(b"content-type", b"application/json"), (b"content-length", b"500")]),  # any iterable
])
async def test_headers_outside_asgi_s_own_form_are_normalised(raw: Any) -> None:
    """A list of lower-case byte-string pairs goes on as it is; anything else is lower-cased and made bytes."""
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": BODY[:500]})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"accept-encoding", b"gzip")]}
    await CompressionMiddleware(app)(scope, None, send)
    assert [tuple(pair) for pair in sent[0]["headers"]] == [
        (b"content-type", b"application/json"), (b"content-length", b"500"), (b"vary", b"Accept-Encoding")]
    assert all(type(k) is bytes and type(v) is bytes for k, v in sent[0]["headers"])
