"""Request heads and early answers on a real uvicorn server (perf.api.protocol, perf.api.limits):
heads bounded in size (431), Host required, HTTP/0.9 refused at once, WebSocket refused in JSON,
a trickled body closed at the body deadline, an early answer that says it closes, echoes cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from tests._api_helpers import drop_namespace, unique_name
from tests._api_raw import RawResponse, closed_after, exchange, parse_response

TIMEOUT = 3.0  # read_timeout: head timer and body deadline
MAX_HEAD = 64 * 1024


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_api_heads")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema, products=5,
                                   read_timeout=TIMEOUT, max_head=MAX_HEAD)) as srv:
            yield srv
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def _json_error(response: RawResponse, status: int) -> None:
    assert response.status == status, (response.status, response.body[:300])
    assert response.headers.get("connection") == "close", response.headers
    assert response.json()["status"] == status


def push_header(port: int, size: int, *, finish: bool) -> tuple[RawResponse, int, float]:
    """Send a header value of ``size`` bytes (64 KiB at a time) until the server stops reading.

    Returns (the response, bytes the client got to send, seconds until the answer arrived).
    """
    piece = b"a" * 65536
    received = b""
    sent = 0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /products/1 HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sock.setblocking(False)
        while sent < size:
            try:
                sent += sock.send(piece[:size - sent])
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                break
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                break
            except BlockingIOError:
                pass
            except OSError:
                break
        if finish and not received:
            try:
                sock.sendall(b"\r\n\r\n")
            except OSError:
                pass
        sock.setblocking(True)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return parse_response(received), sent, time.monotonic() - started


def test_an_unfinished_40_mb_header_gets_431_at_once(server: ApiServer) -> None:
    response, sent, seconds = push_header(server.port, 40 << 20, finish=False)
    _json_error(response, 431)
    # refused after max_head plus what sockets buffer, long before 40 MB and the head timer
    assert sent < 8 << 20 and seconds < TIMEOUT, (sent, seconds)
    print(f"\nfigure: 40 MB unfinished header -> 431 after {sent / 2**20:.1f} MiB sent, {seconds:.2f} s")


def test_a_finished_10_mb_header_gets_431(server: ApiServer) -> None:
    response, sent, _ = push_header(server.port, 10 << 20, finish=True)
    _json_error(response, 431)


@pytest.mark.parametrize(("lines", "status"), [(100_000, 431), (99, 200)])
def test_header_lines_are_bounded(server: ApiServer, lines: int, status: int) -> None:
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(lines))
    response = exchange(server.port, b"GET /products/1 HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    assert response.status == status, response.body[:200]


def test_a_head_just_over_max_head_in_one_piece_gets_431(server: ApiServer) -> None:
    value = b"v" * (MAX_HEAD - 100)
    ok = exchange(server.port, b"GET /products/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-A: " + value
                  + b"\r\n\r\n")
    assert ok.status == 200
    too_big = exchange(server.port, b"GET /products/1 HTTP/1.1\r\nHost: t\r\nX-A: " + value + b"\r\nX-B: "
                       + b"w" * 200 + b"\r\n\r\n")
    _json_error(too_big, 431)


@pytest.mark.parametrize(("request_head", "status"), [
    (b"GET /products/1 HTTP/1.1\r\n\r\n", 400),
    (b"GET /products/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /products/1 HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /products/1 HTTP/2.0\r\nHost: a\r\n\r\n", 400),
    (b"GET /products/1 HTTP/1.0\r\n\r\n", 200),  # HTTP/1.0 does not need Host
], ids=["1.1 without Host", "1.1 with two Hosts", "1.0 with two Hosts", "HTTP/2.0 line", "1.0 without Host"])
def test_host_and_version_are_checked(server: ApiServer, request_head: bytes, status: int) -> None:
    response = exchange(server.port, request_head)
    if status == 200:
        assert response.status == 200
    else:
        _json_error(response, status)


def test_an_http_0_9_line_is_refused_at_once(server: ApiServer) -> None:
    started = time.monotonic()
    response = exchange(server.port, b"GET /products/1\r\n")
    seconds = time.monotonic() - started
    _json_error(response, 400)
    assert "HTTP version" in response.json()["error"]
    assert seconds < TIMEOUT / 3, seconds  # not held until the head timer


def test_a_websocket_upgrade_gets_a_json_error(server: ApiServer) -> None:
    response = exchange(server.port, b"GET /products/1 HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                        b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    _json_error(response, 400)
    assert "WebSocket" in response.json()["error"]


def test_a_trickled_body_is_closed_at_the_body_deadline(server: ApiServer) -> None:
    """1 byte every 0.5 s: a per-chunk timeout of 3 s would wait for the whole 100 kB (~14 h)."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"POST /uploads HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {server.token}\r\n"
                     "Content-Length: 100000\r\n\r\n".encode())
        seconds, received = closed_after(sock, drip=b"x" * 60, every=0.5)
    _json_error(parse_response(received), 408)
    assert seconds < TIMEOUT + 4, seconds
    print(f"\nfigure: trickled body (1 byte / 0.5 s) -> 408, closed after {seconds:.1f} s (read_timeout {TIMEOUT} s)")


def test_an_early_answer_says_connection_close(server: ApiServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        sock.sendall(b"PATCH /products/1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n")  # no token, and the body never comes
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    response = parse_response(received)
    assert response.status == 401 and response.headers.get("connection") == "close", received[:300]


def test_a_keep_alive_client_never_meets_a_silently_closed_connection(server: ApiServer) -> None:
    """The issue's reproduction: refused PATCHes (401 before the body is read) on one
    keep-alive httpx connection, each followed by a GET on the same client."""
    errors = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(300):
            try:
                assert client.patch("/products/1", json={"price": i}).status_code == 401
                assert client.get("/products/1").status_code == 200
            except httpx.TransportError as exc:
                errors.append(repr(exc))
    assert errors == []
    print("\nfigure: keep-alive client after 300 early 401s: 0 transport errors")


def test_an_echoed_task_id_is_cut(server: ApiServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get("/tasks/" + "a" * 60_000)
        unknown_route = client.get("/" + "b" * 60_000)
        wrong_method = client.post("/products/" + "1" * 60_000)
    assert wrong_method.status_code == 405 and len(wrong_method.content) < 300, len(wrong_method.content)
    assert response.status_code == 404 and len(response.content) < 300, len(response.content)
    assert unknown_route.status_code == 404 and len(unknown_route.content) < 300, len(unknown_route.content)
