"""The middleware under Nexios (``wrap_asgi``), through a real uvicorn server over TCP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from perf.compression.codecs import DEFAULT_LEVELS, decompress
from perf.compression.demo_app import create_demo_app
from perf.compression.demo_server import DemoServer
from perf.compression.middleware import NO_COMPRESSION_HEADER
from perf.compression.payloads import product_list_json


@pytest.fixture(scope="module")
def asgi_server() -> Iterator[DemoServer]:
    with DemoServer(mode="asgi", minimum_size=1024) as server:
        yield server


def get_raw(server: DemoServer, path: str, accept: str | None) -> tuple[httpx.Response, bytes]:
    """GET ``path`` and return the response with its body as sent on the wire (not decoded)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        del client.headers["accept-encoding"]  # httpx sends its own by default
        if accept is not None:
            client.headers["accept-encoding"] = accept
        with client.stream("GET", path) as response:
            return response, b"".join(response.iter_raw())


@pytest.mark.parametrize("coding", sorted(DEFAULT_LEVELS))
def test_nexios_product_list_is_compressed_with_each_coding(asgi_server: DemoServer, coding: str) -> None:
    response, wire = get_raw(asgi_server, "/products?size=100000", coding)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == coding
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(wire) < 100_000 / 2
    assert decompress(coding, wire) == product_list_json(100_000)


def test_nexios_streamed_response_is_compressed_chunk_by_chunk(asgi_server: DemoServer) -> None:
    response, wire = get_raw(asgi_server, "/stream?chunks=20&size=5000", "gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    _, plain = get_raw(asgi_server, "/stream?chunks=20&size=5000", "identity")
    assert len(plain) >= 20 * 4999
    assert decompress("gzip", wire) == plain


@pytest.mark.parametrize(("path", "status"), [("/events", 200), ("/private?q=abc", 200), ("/empty", 204)])
def test_nexios_skips_events_opt_outs_and_204(asgi_server: DemoServer, path: str, status: int) -> None:
    response, wire = get_raw(asgi_server, path, "gzip, br")
    assert response.status_code == status
    assert "content-encoding" not in response.headers
    assert NO_COMPRESSION_HEADER not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    if path.startswith("/private"):
        assert b'"you_searched":"abc"' in wire.replace(b" ", b"")


@pytest.mark.parametrize("accept", ["gzip;q=9", "br gzip", "gzip;q=0", "", None])
def test_nexios_bad_or_refusing_headers_get_identity_not_500(asgi_server: DemoServer, accept: str | None) -> None:
    response, wire = get_raw(asgi_server, "/products?size=5000", accept)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert wire == product_list_json(5_000)


def test_seed_style_function_middleware_compresses_nothing() -> None:
    with DemoServer(mode="naive") as server:
        response, wire = get_raw(server, "/products?size=100000", "gzip")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert wire == product_list_json(100_000)


def test_demo_app_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode='gzip' is unknown"):
        create_demo_app(mode="gzip")


def test_server_start_failure_is_reported() -> None:
    server = DemoServer(mode="asgi", levels={"gzip": 99}, startup_timeout=20)
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    with pytest.raises(RuntimeError, match="not running"):
        server.cpu_seconds()


def test_server_cannot_start_twice(asgi_server: DemoServer) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        asgi_server.start()
    assert asgi_server.cpu_seconds() > 0
